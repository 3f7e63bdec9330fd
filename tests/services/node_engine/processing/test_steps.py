"""The consumer's steps alone: decoding, trigger records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.node_engine.core.state import AccountState, Transition, TransitionKind
from services.node_engine.processing.steps import decode, trigger_record
from shared.bus import ConsumedRecord
from shared.contracts import AccountEvent, EventEnvelope, EventType, Topic, TriggerEnvelope
from shared.contracts.events import AccountEventRecord
from shared.errors import InvalidMessage

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
EVENT = EventEnvelope(
    event_id="e1",
    workspace_id="ws",
    message_id="m1",
    type=EventType.TRACK,
    event="Order Completed",
    user_id="u1",
    timestamp=T0,
    received_at=T0,
    source="segment",
)
ATTRIBUTED = AccountEvent(**{**dict(EVENT), "account_id": "acme", "actor_roles": ["admin"]})

RECORD = AccountEventRecord(**ATTRIBUTED.model_dump())
"""``ATTRIBUTED`` as the engine reads it."""


def consumed(
    topic: str, value: bytes, headers: tuple[tuple[str, bytes], ...] = ()
) -> ConsumedRecord:
    return ConsumedRecord(topic, 4, 17, b"ws/u/u1", value, headers, 0)


def test_an_event_decodes_and_a_malformed_one_is_refused_with_the_field() -> None:
    value = ATTRIBUTED.model_dump_json()
    assert decode(consumed(Topic.ACCOUNT_EVENTS, value.encode())).event == RECORD
    with pytest.raises(InvalidMessage, match="not a valid account event: type: Input should be"):
        decode(consumed(Topic.ACCOUNT_EVENTS, value.replace('"track"', '"nope"').encode()))
    with pytest.raises(InvalidMessage, match="score envelope"):
        decode(consumed(Topic.SCORES, b"[]"))
    with pytest.raises(InvalidMessage, match="account_id: Input should be a valid string"):
        decode(consumed(Topic.ACCOUNT_EVENTS, EVENT.model_dump_json().encode()))


@pytest.mark.parametrize(
    ("cause", "causing_event"), [("e1", "e1"), ("timer:abc", None), ("move:m9", None)]
)
def test_a_trigger_record_is_a_valid_trigger_envelope(
    cause: str, causing_event: str | None
) -> None:
    state = AccountState("ws", "acme", "platform-merchant", 3, 0, "nurturing", 0, "first_order", 0)
    step = Transition(
        "t1",
        TransitionKind.NODE_OVERDUE,
        "nurturing",
        "first_order",
        "not done",
        cause,
        int(T0.timestamp()),
        ("admin", "account_owner"),
        {"due_at": 5, "list": (1, 2)},
    )
    record = trigger_record(state, step)
    assert (record.topic, record.key) == (Topic.TRIGGERS, b"ws/a/acme")
    trigger = TriggerEnvelope.model_validate_json(record.value)
    assert trigger.model_dump(mode="json") == {
        "schema_version": 1,
        "trigger_id": "t1",
        "workspace_id": "ws",
        "account_id": "acme",
        "path_id": "platform-merchant",
        "path_version": 3,
        "stage": "nurturing",
        "node": "first_order",
        "kind": "node_overdue",
        "target_roles": ["admin", "account_owner"],
        "reason": "not done",
        "causing_event_id": causing_event,
        "occurred_at": "2026-03-02T09:00:00Z",
        "payload": {"due_at": 5, "list": [1, 2]},
    }
