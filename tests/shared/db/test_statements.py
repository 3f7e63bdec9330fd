"""The bulk statements: one statement per call on PostgreSQL (arrays unnested), plain
statements on SQLite, the same rows either way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.accounts.models import AccountFactsRow, FunnelCountRow
from services.node_engine.timers.models import TimerRow
from shared.db import statements
from shared.db.engine import create_engine, create_session_factory
from shared.db.statements import (
    KEYS,
    among_keys,
    bulk_add,
    bulk_update,
    bulk_upsert,
    delete_by_ids,
    insert_ignoring_duplicates,
    insert_new,
    insert_rows,
    rows_by_keys,
    upsert,
)

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
KEY = ("workspace_id", "account_id")
COLUMNS = ("workspace_id", "account_id", "facts")


def row(workspace: str, account: str, facts: dict[str, object]) -> dict[str, object]:
    return {"workspace_id": workspace, "account_id": account, "facts": facts, "updated_at": NOW}


async def test_an_upsert_replaces_and_an_insert_ignoring_duplicates_keeps(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        await bulk_upsert(
            session, AccountFactsRow, [row(w, "a", {"roles": ["admin"]}), row(w, "b", {})], key=KEY
        )
        await bulk_upsert(session, AccountFactsRow, [row(w, "a", {"plan": "pro"})], key=KEY)
        await insert_ignoring_duplicates(
            session, AccountFactsRow, [row(w, "b", {"lost": True}), row(w, "c", {"n": [1, 2]})]
        )
        await session.commit()
    async with sessions() as session:
        found = await rows_by_keys(
            session, AccountFactsRow, KEY, [(w, "a"), (w, "b"), (w, "c"), (w, "x")], COLUMNS
        )
    assert sorted((account, facts) for _, account, facts in found) == [
        ("a", {"plan": "pro"}),
        ("b", {}),
        ("c", {"n": [1, 2]}),
    ]


async def test_no_keys_read_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        assert await rows_by_keys(session, AccountFactsRow, KEY, [], COLUMNS) == []


async def test_rows_read_with_a_lock_stay_locked_until_the_transaction_ends(
    postgres_url: str,
) -> None:
    """PostgreSQL (SQLite has one writer): another transaction cannot lock a row read with
    ``lock`` until the reader's transaction ends, and can lock the rows it did not read."""
    w = f"w{uuid.uuid4().hex[:8]}"
    engine = create_engine(postgres_url)
    sessions = create_session_factory(engine)
    facts = AccountFactsRow.__table__.c
    try:
        async with sessions() as session:
            await insert_rows(session, AccountFactsRow, [row(w, "a", {}), row(w, "b", {})])
            await session.commit()
        async with sessions() as reader, sessions() as other:
            found = await rows_by_keys(reader, AccountFactsRow, KEY, [(w, "a")], KEY, lock=True)

            async def lock(account: str) -> list[str]:
                query = (
                    select(facts.account_id)
                    .where(facts.workspace_id == w, facts.account_id == account)
                    .with_for_update(nowait=True)
                )
                return list(await other.scalars(query))

            with pytest.raises(DBAPIError, match="could not obtain lock"):
                await lock("a")
            await other.rollback()
            assert await lock("b") == ["b"]
            await reader.commit()
            assert await lock("a") == ["a"]
    finally:
        await engine.dispose()
    assert [tuple(r) for r in found] == [(w, "a")]


async def test_a_plain_insert_of_a_key_already_there_fails(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        await insert_rows(session, AccountFactsRow, [row(w, "a", {}), row(w, "b", {})])
        await session.commit()
    async with sessions() as session:
        with pytest.raises(IntegrityError):
            await insert_rows(session, AccountFactsRow, [row(w, "c", {}), row(w, "a", {})])


def timer(timer_id: str) -> dict[str, object]:
    return {
        "timer_id": timer_id,
        "partition": 0,
        "due_at": 1,
        "workspace_id": "w",
        "account_id": "a",
        "path_id": "p",
        "path_version": 1,
        "kind": "due",
        "node": None,
        "visit": 0,
        "level": 0,
    }


async def test_insert_new_returns_the_new_keys_and_delete_by_ids_counts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ids = [f"t{uuid.uuid4().hex[:20]}" for _ in range(3)]
    async with sessions() as session:
        assert await insert_new(session, TimerRow, [timer(ids[0])], "timer_id") == {ids[0]}
        inserted = await insert_new(session, TimerRow, [timer(i) for i in ids], "timer_id")
        assert inserted == {ids[1], ids[2]}
        assert await delete_by_ids(session, TimerRow, "timer_id", [ids[0], ids[2], "x"]) == 2
        assert await delete_by_ids(session, TimerRow, "timer_id", []) == 0
        await session.rollback()  # leaves no due timer for the engine's tests on this database


async def test_an_update_sets_the_rows_given_by_key_and_keeps_what_a_none_keeps(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statements, "VALUES_PER_STATEMENT", 8)  # two rows of four per part
    ids = [f"t{uuid.uuid4().hex[:20]}" for _ in range(4)]
    changes = [
        {"timer_id": ids[0], "due_at": 5, "node": None, "detail": {"k": [1]}},
        {"timer_id": ids[1], "due_at": 6, "node": "n9", "detail": None},
        {"timer_id": ids[2], "due_at": 7, "node": None, "detail": None},
        {"timer_id": "absent", "due_at": 8, "node": "n8", "detail": None},
    ]
    async with sessions() as session:
        await insert_rows(session, TimerRow, [{**timer(i), "node": "n0"} for i in ids])
        await bulk_update(session, TimerRow, changes, key="timer_id", keep=("node",))
        found = await rows_by_keys(
            session,
            TimerRow,
            ("timer_id",),
            [(i,) for i in [*ids, "absent"]],
            ("timer_id", "due_at", "node", "detail"),
        )
        await session.rollback()  # leaves no due timer for the engine's tests on this database
    assert sorted((ids.index(t), due, node, detail) for t, due, node, detail in found) == [
        (0, 5, "n0", {"k": [1]}),
        (1, 6, "n9", None),
        (2, 7, "n0", None),
        (3, 1, "n0", None),
    ]


async def test_many_rows_are_written_in_parts_with_the_same_outcome(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statements, "VALUES_PER_STATEMENT", 8)  # two rows of four per part
    w = f"w{uuid.uuid4().hex[:8]}"
    accounts = [f"a{i}" for i in range(5)]
    async with sessions() as session:
        await insert_rows(session, AccountFactsRow, [row(w, a, {"n": 0}) for a in accounts])
        await bulk_upsert(
            session, AccountFactsRow, [row(w, a, {"n": 1}) for a in accounts[:3]], key=KEY
        )
        await insert_ignoring_duplicates(
            session, AccountFactsRow, [row(w, a, {"n": 2}) for a in [*accounts, "b", "b"]]
        )
        fresh = [row(w, a, {"n": 3}) for a in ["c", "a0", "d", "e"]]
        assert await insert_new(session, AccountFactsRow, fresh, KEY) == {
            (w, "c"),
            (w, "d"),
            (w, "e"),
        }
        await session.commit()
    async with sessions() as session:
        found = await rows_by_keys(
            session, AccountFactsRow, KEY, [(w, a) for a in [*accounts, "b", "c"]], COLUMNS
        )
    assert sorted((account, facts["n"]) for _, account, facts in found) == [
        ("a0", 1),
        ("a1", 1),
        ("a2", 1),
        ("a3", 0),
        ("a4", 0),
        ("b", 2),
        ("c", 3),
    ]


async def test_an_add_inserts_new_keys_and_increases_the_amount_of_those_there(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"

    def counted(node: str, count: int) -> dict[str, object]:
        return {
            "workspace_id": w,
            "path_id": "p",
            "stage": "s",
            "node": node,
            "kind": "node_entered",
            "partition": 0,
            "count": count,
        }

    key = ("workspace_id", "path_id", "stage", "node", "kind", "partition")
    async with sessions() as session:
        await bulk_add(
            session, FunnelCountRow, [counted("a", 2), counted("b", 1)], key=key, amount="count"
        )
        await bulk_add(
            session, FunnelCountRow, [counted("b", 5), counted("c", 1)], key=key, amount="count"
        )
        await session.commit()
    async with sessions() as session:
        found = await rows_by_keys(
            session,
            FunnelCountRow,
            key,
            [(w, "p", "s", node, "node_entered", 0) for node in "abcd"],
            ("node", "count"),
        )
    assert sorted((node, count) for node, count in found) == [("a", 2), ("b", 6), ("c", 1)]


_FACTS_AMONG = select(AccountFactsRow.account_id).where(
    among_keys(AccountFactsRow.workspace_id, AccountFactsRow.account_id)
)


async def test_a_statement_built_once_finds_the_keys_given_at_each_execution(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    w = f"w{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        await upsert(session, AccountFactsRow, [row(w, "a", {}), row(w, "b", {})], key=KEY)
        await upsert(session, AccountFactsRow, [row(w, "b", {"plan": "pro"})], key=KEY)
        await session.commit()
        found = [
            sorted(await session.scalars(_FACTS_AMONG, {KEYS: keys}))
            for keys in ([(w, "a"), (w, "b"), (w, "x")], [(w, "b")], [])
        ]
        (facts,) = await rows_by_keys(session, AccountFactsRow, KEY, [(w, "b")], COLUMNS)
    assert found == [["a", "b"], ["b"], []]
    assert facts[2] == {"plan": "pro"}
