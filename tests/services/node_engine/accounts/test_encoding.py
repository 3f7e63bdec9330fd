"""The stored form of account states: a faithful round trip, compact in memory."""

from __future__ import annotations

import tracemalloc

import pytest

from services.node_engine.accounts.encoding import decode_state, encode_state
from services.node_engine.core.state import AccountState, NodeRecord, NodeStatus

STATE = AccountState(
    workspace_id="ws",
    account_id="acme",
    path_id="platform-merchant",
    path_version=2,
    enrolled_at=1_770_000_000,
    stage="nurturing",
    stage_entered_at=1_770_086_400,
    node="ten_orders",
    node_entered_at=1_770_090_000,
    nodes={
        "first_order": NodeRecord(NodeStatus.COMPLETED, 1, 1_770_086_400, 1_770_090_000),
        "ten_orders": NodeRecord(NodeStatus.ACTIVE, 2, 1_770_090_000),
    },
    tier="L2",
    aggregates={
        "count|Order Completed||||": 7.0,
        "sum|Order Completed|amount|||2419200": ((20480, 1200.5), (20481, 99.0)),
        "distinct_users|*||||604800": (("u1", 20480), ("u2", 20481)),
    },
    facts={"crm.deal_stage": "won", "account.size": 40, "score.health": 71.5, "crm.x": None},
    sequence=12,
    last_error="sum of 'amount': 'n/a' is not a number",
)


def test_a_state_survives_its_stored_form() -> None:
    assert decode_state(encode_state(STATE)) == STATE


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown account state format"):
        decode_state(b"[99]")


def test_an_encoded_state_holds_no_more_memory_than_its_size() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        encoded = [encode_state(STATE) for _ in range(200)]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert held / len(encoded) < len(encoded[0]) + 200


def test_a_whole_total_reads_back_as_a_number_and_bad_bytes_are_refused() -> None:
    stored = encode_state(STATE).replace(
        b'"count|Order Completed||||":7.0', b'"count|Order Completed||||":7'
    )
    assert stored != encode_state(STATE)
    total = decode_state(stored).aggregates["count|Order Completed||||"]
    assert isinstance(total, float)
    assert total == 7.0
    with pytest.raises(ValueError, match="unknown account state format"):
        decode_state(b'[1,"ws"')
