"""Queries on account states, their history and facts. Repositories flush, never commit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.node_engine.accounts.models import (
    FUNNEL_KINDS,
    AccountFactsRow,
    AccountStateRow,
    FunnelCountRow,
    TransitionRow,
)
from services.node_engine.core.state import AccountState, Transition
from shared.db.copying import copy_rows
from shared.db.statements import bulk_add, bulk_upsert, rows_by_keys
from shared.slicing import Slicer

StateKey = tuple[str, str, str]
"""(workspace id, account id, path id)."""
AccountKey = tuple[str, str]
"""(workspace id, account id)."""
CHUNK = 500


async def load_states(session: AsyncSession, keys: Iterable[StateKey]) -> dict[StateKey, bytes]:
    """The stored states among ``keys``, encoded (:func:`decode_state` reads them); absent
    keys are not in the result. One query for the whole batch."""
    rows = await rows_by_keys(
        session,
        AccountStateRow,
        ("workspace_id", "account_id", "path_id"),
        keys,
        ("workspace_id", "account_id", "path_id", "state"),
    )
    return {(workspace, account, path): data for workspace, account, path, data in rows}


async def save_states(
    session: AsyncSession, states: Sequence[tuple[AccountState, bytes]], *, now: datetime
) -> None:
    """Store states with their encoding (:func:`encode_state`), letting the event loop
    run while their rows are built (:class:`~shared.slicing.Slicer`)."""
    rows: list[dict[str, Any]] = []
    slicer = Slicer()
    for s, data in states:
        await slicer.pause()
        rows.append(
            {
                "workspace_id": s.workspace_id,
                "account_id": s.account_id,
                "path_id": s.path_id,
                "path_version": s.path_version,
                "stage": s.stage,
                "node": s.node,
                "tier": s.tier,
                "last_error": s.last_error,
                "state": data,
                "updated_at": now,
            }
        )
    await bulk_upsert(session, AccountStateRow, rows, key=("workspace_id", "account_id", "path_id"))


FUNNEL_COUNT_KEY = ("workspace_id", "path_id", "stage", "node", "kind", "partition")
HISTORY_COLUMNS = (
    "transition_id",
    "workspace_id",
    "account_id",
    "path_id",
    "path_version",
    "kind",
    "stage",
    "node",
    "reason",
    "cause_id",
    "target_roles",
    "payload",
    "occurred_at",
)


async def append_transitions(
    session: AsyncSession, entries: Sequence[tuple[AccountState, Transition, int]]
) -> None:
    """Append to the history (each entry: the state after, the transition, the input
    partition it came from) and count the funnel's kinds among them. Each transition is
    appended once: its cause is applied once (the consumer's seen events and offsets commit
    in the same transaction). The event loop runs while the rows are built
    (:class:`~shared.slicing.Slicer`)."""
    rows: list[tuple[Any, ...]] = []
    counts: Counter[tuple[str, str, str, str, str, int]] = Counter()
    times: dict[int, datetime] = {}
    slicer = Slicer()
    for s, t, partition in entries:
        await slicer.pause()
        kind = t.kind.value
        at = times.get(t.occurred_at)
        if at is None:
            at = times[t.occurred_at] = datetime.fromtimestamp(t.occurred_at, UTC)
        rows.append(
            (
                t.id,
                s.workspace_id,
                s.account_id,
                s.path_id,
                s.path_version,
                kind,
                t.stage,
                t.node,
                t.reason,
                t.cause_id,
                t.target_roles,
                t.payload,
                at,
            )
        )
        if kind in FUNNEL_KINDS:
            counts[(s.workspace_id, s.path_id, t.stage, t.node or "", kind, partition)] += 1
    await copy_rows(session, TransitionRow, HISTORY_COLUMNS, rows)
    await bulk_add(
        session,
        FunnelCountRow,
        [
            dict(zip(FUNNEL_COUNT_KEY, key, strict=True), count=count)
            for key, count in sorted(counts.items())
        ],
        key=FUNNEL_COUNT_KEY,
        amount="count",
    )


async def load_facts(
    session: AsyncSession, keys: Iterable[AccountKey]
) -> dict[AccountKey, dict[str, Any]]:
    """The stored facts of the accounts among ``keys`` (absent: none stored); one query."""
    rows = await rows_by_keys(
        session,
        AccountFactsRow,
        ("workspace_id", "account_id"),
        keys,
        ("workspace_id", "account_id", "facts"),
    )
    return {(workspace, account): facts for workspace, account, facts in rows}


async def save_facts(
    session: AsyncSession, facts: dict[AccountKey, dict[str, Any]], *, now: datetime
) -> None:
    """Store each account's facts, letting the event loop run while their rows are built."""
    rows: list[dict[str, Any]] = []
    slicer = Slicer()
    for (workspace, account), values in facts.items():
        await slicer.pause()
        rows.append(
            {"workspace_id": workspace, "account_id": account, "facts": values, "updated_at": now}
        )
    await bulk_upsert(session, AccountFactsRow, rows, key=("workspace_id", "account_id"))
