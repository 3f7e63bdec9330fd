"""Applied offsets move only from where this member last left them (a member that lost a
partition cannot write over its new owner), and the outbox keeps a record whole, headers
included: an attributed event republished after a crash still carries its trace."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.processing.models import OutboxRow
from services.scoring.processing.models import ScoringOutboxRow
from shared import slicing
from shared.attribution.models import AttributionOutboxRow
from shared.bus import OutgoingRecord, TopicPartition
from shared.consuming import outbox
from shared.consuming.offsets import OffsetConflict, advance_offsets, applied_offsets
from shared.consuming.outbox import OutboxModel, add_to_outbox, outbox_of, remove_from_outbox
from tests.turns import LoopTurns

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
NO_SESSION: Any = None
"""For a statement stood in for: only the rows it is given matter."""


EVENTS = [TopicPartition("milepost.events", p) for p in range(3)]


async def test_applied_offsets_move_together_from_where_they_were(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    group = f"offsets-{uuid.uuid4().hex[:8]}"
    first, second, third = EVENTS
    async with sessions() as session:
        await advance_offsets(session, group, {first: (None, 5), second: (None, 7)})
        await session.commit()
    async with sessions() as session:
        await advance_offsets(session, group, {first: (5, 9), second: (7, 8), third: (None, 2)})
        await session.commit()
    async with sessions() as session:
        assert await applied_offsets(session, group, EVENTS) == (
            {first: 9, second: 8, third: 2},
            {},
        )


async def test_origin_marks_move_with_the_offsets_and_stay_when_not_moved(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    group = f"offsets-{uuid.uuid4().hex[:8]}"
    first, second, third = EVENTS
    async with sessions() as session:
        await advance_offsets(
            session,
            group,
            {first: (None, 5), second: (None, 7)},
            {first: {"milepost.events:0": (4, 0)}},
        )
        await session.commit()
    async with sessions() as session:
        await advance_offsets(
            session,
            group,
            {first: (5, 9), second: (7, 8), third: (None, 2)},
            {second: {"milepost.events:0": (6, 0), "milepost.events:2": (3, 1)}},
        )
        await session.commit()
    async with sessions() as session:
        offsets, marks = await applied_offsets(session, group, EVENTS)
    assert offsets == {first: 9, second: 8, third: 2}
    assert marks == {
        first: {"milepost.events:0": (4, 0)},
        second: {"milepost.events:0": (6, 0), "milepost.events:2": (3, 1)},
    }


async def test_a_member_that_lost_a_partition_cannot_move_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    group = f"offsets-{uuid.uuid4().hex[:8]}"
    first, second, _ = EVENTS
    async with sessions() as session:
        await advance_offsets(session, group, {first: (None, 5), second: (None, 5)})
        await session.commit()
    async with sessions() as session:  # the partition's new owner moves it on
        await advance_offsets(session, group, {second: (5, 12)})
        await session.commit()

    async with sessions() as session:  # the old owner still believes second is at 5
        with pytest.raises(OffsetConflict, match=r"milepost.events\[1\] moved past 5"):
            await advance_offsets(session, group, {first: (5, 9), second: (5, 10)})
        await session.rollback()
    async with sessions() as session:  # nor may it record a partition as new
        with pytest.raises(IntegrityError):
            await advance_offsets(session, group, {second: (None, 10)})
        await session.rollback()
    async with sessions() as session:
        offsets, _ = await applied_offsets(session, group, [first, second])
    assert offsets == {first: 5, second: 12}


@pytest.mark.parametrize("model", [OutboxRow, ScoringOutboxRow, AttributionOutboxRow])
async def test_outbox_returns_records_with_their_headers_in_order(
    sessions: async_sessionmaker[AsyncSession], model: OutboxModel
) -> None:
    attributed = OutgoingRecord(
        "milepost.accounts.events",
        b"w/a/acme",
        b"{}",
        (("traceparent", b"00-ab-cd-01"), ("raw", b"\xff")),
    )
    trigger = OutgoingRecord("milepost.triggers", b"w/a/acme", b"{}")
    # A partition no consumer test owns: the PostgreSQL database is shared by the session.
    partition = 997
    async with sessions() as session:
        await add_to_outbox(
            session,
            model,
            [("attributed:e1", partition, attributed), ("t1", partition, trigger)],
            now=NOW,
        )
        await session.commit()
    try:
        async with sessions() as session:
            left = await outbox_of(session, model, [partition])
        assert left.records == [("attributed:e1", attributed), ("t1", trigger)]
        assert left.row_ids == (
            ["attributed:e1"] if model is OutboxRow else ["attributed:e1", "t1"]
        )
    finally:
        async with sessions() as session:
            await remove_from_outbox(session, model, ["attributed:e1", "t1"])
            await session.commit()
        async with sessions() as session:
            assert (await outbox_of(session, model, [partition])).row_ids == []


@pytest.mark.parametrize(
    ("model", "refused"), [(OutboxRow, True), (ScoringOutboxRow, False)], ids=["unique", "kept"]
)
async def test_an_id_stored_again_is_refused_only_where_ids_are_unique(
    sessions: async_sessionmaker[AsyncSession], model: OutboxModel, refused: bool
) -> None:
    first = OutgoingRecord("milepost.triggers", b"w/a/acme", b'{"n": 1}')
    again = OutgoingRecord("milepost.triggers", b"w/a/acme", b'{"n": 2}')
    record_id, partition = f"t-{uuid.uuid4().hex}", 996
    async with sessions() as session:
        await add_to_outbox(session, model, [(record_id, partition, first)], now=NOW)
        await session.commit()
    try:
        async with sessions() as session:
            if refused:
                with pytest.raises(IntegrityError):
                    await add_to_outbox(session, model, [(record_id, partition, again)], now=NOW)
                await session.rollback()
            else:
                await add_to_outbox(session, model, [(record_id, partition, again)], now=NOW)
                await session.commit()
        async with sessions() as session:
            assert (await outbox_of(session, model, [partition])).records == [(record_id, first)]
    finally:
        async with sessions() as session:
            await remove_from_outbox(session, model, [record_id])
            await session.commit()


async def test_a_packed_outbox_gathers_its_records_in_slices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(slicing, "SLICE_S", 0.0)  # every record ends a slice
    entries = [(f"r{n}", n % 3, OutgoingRecord("milepost.triggers", b"k", b"v")) for n in range(90)]
    copied: list[tuple[int, int]] = []
    async with LoopTurns() as turns:

        async def copy_rows(
            _session: object, _model: object, _names: object, rows: list[Any]
        ) -> None:
            copied.append((turns.count, len(rows)))

        monkeypatch.setattr(outbox, "copy_rows", copy_rows)
        row_ids = await add_to_outbox(NO_SESSION, OutboxRow, entries, now=NOW)

    assert copied == [(len(entries), 3)]  # the loop ran once per record, then one row each
    assert row_ids == ["r0", "r1", "r2"]
