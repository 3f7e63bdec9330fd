"""The stored form of :class:`AccountState`: compact JSON, versioned (written by orjson,
read by msgspec).

Aggregates keep their shape: a lifetime total is a number, a window a list of
``[bucket, amount]`` pairs, distinct users a list of ``[user, last bucket]`` pairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import orjson

from services.node_engine.core.state import AccountState, AggregateValue, NodeRecord, NodeStatus

FORMAT = 1


def encode_state(state: AccountState) -> bytes:
    """The stored form, exactly sized: orjson's own result keeps a 4 KiB buffer, too much
    for a cache of hundreds of thousands of states, so it is copied once."""
    encoded = orjson.dumps(
        [
            FORMAT,
            state.workspace_id,
            state.account_id,
            state.path_id,
            state.path_version,
            state.enrolled_at,
            state.stage,
            state.stage_entered_at,
            state.node,
            state.node_entered_at,
            {
                node: [r.status, r.visits, r.entered_at, r.completed_at]
                for node, r in state.nodes.items()
            },
            state.tier,
            dict(state.aggregates),
            dict(state.facts),
            state.sequence,
            state.last_error,
        ]
    )
    return bytes(memoryview(encoded))


class _Stored(msgspec.Struct, array_like=True, gc=False):
    """The stored layout, field by field, as :func:`encode_state` writes it: msgspec
    builds the values while it parses (a node's record as a tuple, a window's pairs as
    tuples), so decoding walks no intermediate lists."""

    format: int
    workspace_id: str
    account_id: str
    path_id: str
    path_version: int
    enrolled_at: int
    stage: str
    stage_entered_at: int
    node: str | None
    node_entered_at: int | None
    nodes: Mapping[str, tuple[NodeStatus, int, int, int | None]]
    tier: str | None
    aggregates: Mapping[str, AggregateValue]
    facts: Mapping[str, Any]
    sequence: int
    last_error: str | None


_READ = msgspec.json.Decoder(_Stored)


def decode_state(data: bytes) -> AccountState:
    """The state ``encode_state`` wrote; ``ValueError`` for an unknown format. The state
    is short-lived (the cache keeps the bytes), so its names are not interned."""
    try:
        stored = _READ.decode(data)
    except msgspec.DecodeError as exc:
        raise ValueError(f"unknown account state format: {exc}") from exc
    if stored.format != FORMAT:
        raise ValueError(f"unknown account state format {stored.format!r}")
    return AccountState(
        stored.workspace_id,
        stored.account_id,
        stored.path_id,
        stored.path_version,
        stored.enrolled_at,
        stored.stage,
        stored.stage_entered_at,
        stored.node,
        stored.node_entered_at,
        {node_id: NodeRecord(*record) for node_id, record in stored.nodes.items()},
        stored.tier,
        stored.aggregates,
        stored.facts,
        stored.sequence,
        last_error=stored.last_error,
    )
