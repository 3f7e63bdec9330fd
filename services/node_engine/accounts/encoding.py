"""The stored form of :class:`AccountState`: compact JSON (orjson), versioned.

Aggregates keep their shape: a lifetime total is a number, a window a list of
``[bucket, amount]`` pairs, distinct users a list of ``[user, last bucket]`` pairs.
"""

from __future__ import annotations

from sys import intern
from typing import Any

import orjson

from services.node_engine.core.state import AccountState, AggregateValue, NodeRecord, NodeStatus

FORMAT = 1
_STATUSES = {status.value: status for status in NodeStatus}


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
                node: [r.status.value, r.visits, r.entered_at, r.completed_at]
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


def decode_state(data: bytes) -> AccountState:
    """The state ``encode_state`` wrote; ``ValueError`` for an unknown format.

    Names every account shares (workspace, path, stage, node, aggregate and fact names) are
    interned, so a cache of many states holds one copy of each."""
    fields: list[Any] = orjson.loads(data)
    if not fields or fields[0] != FORMAT:
        raise ValueError(f"unknown account state format {fields[:1]!r}")
    (_, workspace, account, path, version, enrolled, stage, stage_at, node, node_at) = fields[:10]
    nodes, tier, aggregates, facts, sequence, last_error = fields[10:]
    return AccountState(
        workspace_id=intern(workspace),
        account_id=account,
        path_id=intern(path),
        path_version=version,
        enrolled_at=enrolled,
        stage=intern(stage),
        stage_entered_at=stage_at,
        node=None if node is None else intern(node),
        node_entered_at=node_at,
        nodes={
            intern(node_id): NodeRecord(_STATUSES[status], visits, entered, completed)
            for node_id, (status, visits, entered, completed) in nodes.items()
        },
        tier=None if tier is None else intern(tier),
        aggregates={intern(key): _aggregate(value) for key, value in aggregates.items()},
        facts={intern(key): value for key, value in facts.items()},
        sequence=sequence,
        last_error=last_error,
    )


def _aggregate(value: Any) -> AggregateValue:
    if isinstance(value, list):
        return tuple((first, second) for first, second in value)
    return float(value)
