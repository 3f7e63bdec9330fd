"""The checkpoint's writes of states, history and facts let the event loop run while they
build their rows: a batch of a thousand accounts does not hold back requests and timers
for the whole of it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.node_engine.accounts import repository
from services.node_engine.core.state import AccountState, Transition, TransitionKind
from shared import slicing
from tests.turns import LoopTurns

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
ROWS = 200
STATES = [
    AccountState("ws", f"acme-{n}", "onboarding", 1, 0, "trial", 0, None, None) for n in range(ROWS)
]
NO_SESSION: Any = None
"""The statements are stand-ins: only the rows they are given matter here."""


def noting_statements(monkeypatch: pytest.MonkeyPatch, turns: LoopTurns) -> list[tuple[int, int]]:
    """Per statement the repository runs from here on: how many times the event loop had
    run other work before it, and how many rows it was given. Every row ends a slice."""
    monkeypatch.setattr(slicing, "SLICE_S", 0.0)
    found: list[tuple[int, int]] = []

    async def statement(_session: Any, _model: Any, *args: Any, **_options: Any) -> None:
        found.append((turns.count, len(args[-1])))

    for name in ("bulk_upsert", "bulk_add", "copy_rows"):
        monkeypatch.setattr(repository, name, statement)
    return found


async def test_the_rows_of_states_are_built_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    async with LoopTurns() as turns:
        statements = noting_statements(monkeypatch, turns)
        await repository.save_states(NO_SESSION, [(s, b"state") for s in STATES], now=NOW)

    assert statements == [(ROWS, ROWS)]


async def test_the_rows_of_history_are_built_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    history = [
        (s, Transition(f"t{n}", TransitionKind.STAGE_ENTERED, "trial", None, "enrolled", "e", 0), 0)
        for n, s in enumerate(STATES)
    ]
    async with LoopTurns() as turns:
        statements = noting_statements(monkeypatch, turns)
        await repository.append_transitions(NO_SESSION, history)

    (copied, rows), (counted, funnel_rows) = statements
    assert (copied, rows) == (ROWS, ROWS)
    assert (counted, funnel_rows) == (ROWS, 1)  # one stage entered, counted ROWS times


async def test_the_rows_of_facts_are_built_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    facts = {("ws", s.account_id): {"plan": "pro"} for s in STATES}
    async with LoopTurns() as turns:
        statements = noting_statements(monkeypatch, turns)
        await repository.save_facts(NO_SESSION, facts, now=NOW)

    assert statements == [(ROWS, ROWS)]
