"""One consumer-group member's at-least-once bookkeeping, for the stages of
:mod:`shared.consuming.stream` (which spells out the checkpoint order): what it owns,
where each owned partition is applied up to, which events it applied (deduplication on
the records' origins, :mod:`.origins`, or else on ``event_id``, :mod:`.seen`) and which
outbox records the bus has acknowledged."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus import Bus, ConsumedRecord, Consumer, TopicPartition
from shared.consuming.offsets import Moves, PartitionMarks, advance_offsets, applied_offsets
from shared.consuming.origins import Position, origin_of
from shared.consuming.outbox import (
    OutboxEntry,
    OutboxModel,
    add_to_outbox,
    outbox_of,
    remove_from_outbox,
)
from shared.consuming.seen import (
    DEDUP_WINDOW,
    PRUNE_EVERY,
    Sighting,
    forget_before,
    record_new,
    remember,
    seen_before,
)
from shared.db.statements import on_postgresql

T = TypeVar("T")

FORGET_AT = 2_000
"""Acknowledged outbox rows a member deletes in a batch's transaction at the latest."""
COMMIT_EVERY = timedelta(seconds=1)
"""How often a member commits its consumer offsets, at most, while it has work (a step
with nothing to checkpoint commits them at once)."""
FORGET_EVERY = timedelta(seconds=1)
"""How often a member deletes its acknowledged outbox rows, at most, while it has work (a
step with nothing to checkpoint deletes them at once, :meth:`FencedMember.forget_acknowledged`)."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sifted(Generic[T]):
    """A batch's items after deduplication on ``event_id``."""

    fresh: list[T]
    duplicates: list[T]
    sightings: list[Sighting]
    """Of the fresh items: to record with the batch."""
    recorded: bool = False
    """Whether the sift recorded the fresh items' sightings in the batch's session."""


class FencedMember:
    """The partitions one member owns, their applied offsets and, with an ``outbox``
    model, the records it keeps there. Not safe for concurrent use: one worker loop."""

    def __init__(
        self,
        *,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        group_id: str,
        outbox: OutboxModel | None = None,
        dedup_window: timedelta = DEDUP_WINDOW,
    ) -> None:
        self.bus = bus
        self.sessions = sessions
        self.group_id = group_id
        self.outbox = outbox
        self.assignment: frozenset[TopicPartition] = frozenset()
        self.applied: dict[TopicPartition, int] = {}
        self.marks: dict[TopicPartition, dict[str, Position]] = {}
        """Per owned partition, its origin marks as of the last batch handed off."""
        self.acknowledged: list[str] = []
        """Outbox rows whose records the bus acknowledged, deleted with a later
        transaction (:meth:`forget_due`)."""
        self.forgetting = 0
        """How many of :attr:`acknowledged` the transaction in progress deletes."""
        self.forgotten_at: datetime | None = None
        self.uncommitted: dict[TopicPartition, int] = {}
        """Applied offsets not yet committed to the consumer group."""
        self.committed_at: datetime | None = None
        self.dedup_window = dedup_window
        self.pruned_at: datetime | None = None

    async def sync_assignment(self, consumer: Consumer) -> bool:
        """On a new assignment: learn the applied offsets, and publish what a previous owner
        left in the outbox of the partitions gained (before anything else of theirs);
        whether the assignment changed (the caller drops what it cached)."""
        current = consumer.assignment()
        if current == self.assignment:
            return False
        gained = {tp.partition for tp in current - self.assignment}
        async with self.sessions() as session:
            self.applied, self.marks = await applied_offsets(session, self.group_id, current)
            left = None if self.outbox is None else await outbox_of(session, self.outbox, gained)
        if left is not None and left.row_ids:
            assert self.outbox is not None
            await self.bus.publish([record for _, record in left.records])
            async with self.sessions() as session:
                await remove_from_outbox(session, self.outbox, left.row_ids)
                await session.commit()
            logger.info(
                "published records left by a previous owner", extra={"count": len(left.records)}
            )
        self.assignment = current
        return True

    def admit(
        self, record: ConsumedRecord, moves: dict[TopicPartition, tuple[int | None, int]]
    ) -> bool:
        """Move ``record``'s partition past it in ``moves``; whether the record is still
        to apply (``False``: it is below the applied offset, a replay)."""
        tp = record.topic_partition
        applied = self.applied.get(tp)
        previous = moves.get(tp, (applied, applied))[0]
        moves[tp] = (previous, max(applied or 0, record.offset + 1))
        return applied is None or record.offset >= applied

    def first_arrival(
        self, record: ConsumedRecord, marks: dict[TopicPartition, dict[str, Position]]
    ) -> bool | None:
        """Whether ``record`` comes past its partition's mark for its origin (moving the
        mark in ``marks``, a batch's: each moved partition's marks in full); ``False``: a
        copy of a record applied; ``None``: it has no origin (deduplicate on its event id)."""
        origin = origin_of(record)
        if origin is None:
            return None
        source, position = origin
        tp = record.topic_partition
        moved = marks.get(tp)
        last = (self.marks.get(tp, {}) if moved is None else moved).get(source)
        if last is not None and position <= last:
            return False
        if moved is None:
            moved = marks[tp] = dict(self.marks.get(tp, {}))
        moved[source] = position
        return True

    async def first_sightings(
        self,
        items: Sequence[T],
        sighting: Callable[[T], Sighting | None],
        *,
        now: datetime,
        session: AsyncSession | None = None,
    ) -> Sifted[T]:
        """``items`` split into those to apply and the duplicates (their event already
        applied by the group at that stage, in the window or earlier in ``items``); an
        item without a sighting is applied. One statement for the whole batch, in
        ``session`` when given (the batch's own), else in one of its own.

        On PostgreSQL, in the batch's ``session``, the statement also records the fresh
        sightings (:func:`~shared.consuming.seen.record_new`), committed or rolled back
        with the batch; otherwise they are returned, to :meth:`hold` with it."""
        keyed = [(item, sighting(item)) for item in items]
        first = {s.key: s for _, s in reversed(keyed) if s is not None}
        if not first:
            return Sifted(list(items), [], [])
        if session is not None and on_postgresql(session):
            ordered = [s for _, s in keyed if s is not None and first[s.key] is s]
            seen = set(first) - await record_new(session, self.group_id, ordered, now=now)
            sifted: Sifted[T] = Sifted([], [], [], recorded=True)
        else:
            sifted = Sifted([], [], [])
            seen = await self.already_applied(list(first.values()), session)
            sifted.sightings.extend(
                s for _, s in keyed if s is not None and first[s.key] is s and s.key not in seen
            )
        for item, s in keyed:
            if s is not None and s.key in seen:
                sifted.duplicates.append(item)
                continue
            if s is not None:
                seen.add(s.key)
            sifted.fresh.append(item)
        return sifted

    async def already_applied(
        self, sightings: Sequence[Sighting], session: AsyncSession | None
    ) -> set[tuple[str, str]]:
        """The keys of ``sightings`` the group applied, looked up in ``session`` or in a
        session of its own."""
        if session is not None:
            return await seen_before(session, self.group_id, sightings)
        async with self.sessions() as own:
            return await seen_before(own, self.group_id, sightings)

    async def hold(
        self,
        session: AsyncSession,
        moves: Moves,
        entries: Sequence[OutboxEntry] = (),
        *,
        sightings: Sequence[Sighting] = (),
        marks: PartitionMarks | None = None,
        now: datetime,
    ) -> list[str]:
        """In the batch's transaction: delete the acknowledged outbox rows when due, store
        ``entries`` in the outbox, record the ``sightings``, prune the expired ones (at
        most every hour) and move the applied offsets with the origin ``marks``, fenced (raises
        :class:`~shared.consuming.offsets.OffsetConflict` or ``IntegrityError``, a
        :class:`~shared.errors.PartitionMoved` at the stream's edge, when another member
        moved one or applied one of the events first). The ids of the outbox rows stored,
        for :meth:`release`; :meth:`committed` once the transaction commits."""
        held: list[str] = []
        if self.outbox is not None:
            self.forgetting = len(self.acknowledged) if self.forget_due(now) else 0
            if self.forgetting:
                forgotten = self.acknowledged[: self.forgetting]
                await remove_from_outbox(session, self.outbox, forgotten)
                self.forgotten_at = now
            held = await add_to_outbox(session, self.outbox, entries, now=now)
        else:
            assert not entries, "a member without an outbox cannot hold records"
        await remember(session, self.group_id, sightings, now=now)
        if self.pruned_at is None or now - self.pruned_at >= PRUNE_EVERY:
            owned = {tp.partition for tp in self.assignment}
            await forget_before(session, self.group_id, owned, now - self.dedup_window)
            self.pruned_at = now
        await advance_offsets(session, self.group_id, moves, marks)
        return held

    def committed(self) -> None:
        """The transaction of :meth:`hold` committed: forget the rows it deleted."""
        del self.acknowledged[: self.forgetting]
        self.forgetting = 0

    async def release(
        self,
        consumer: Consumer,
        moves: Moves,
        entries: Sequence[OutboxEntry],
        held: Sequence[str],
        *,
        now: datetime,
    ) -> None:
        """Once the transaction of :meth:`hold` committed (and :meth:`committed`): publish
        ``entries`` and mark the rows ``held`` acknowledged, then commit the consumer
        offsets ``moves`` reached when due (:meth:`commit_due`). The stream has set the
        applied offsets when it handed the batch off; publishing may end after the next
        batch's transaction began."""
        if entries:
            await self.bus.publish([record for _, _, record in entries])
        self.acknowledged.extend(held)
        for tp, (_old, new) in moves.items():
            self.uncommitted[tp] = new
        if self.commit_due(now):
            await self.commit_positions(consumer, now)

    def commit_due(self, now: datetime) -> bool:
        """Whether a checkpoint commits the consumer offsets: the last commit was
        :data:`COMMIT_EVERY` ago. The applied offsets in the database decide what is
        applied; the consumer's committed ones only where a member starts reading, so a
        commit skipped costs a restart at most that long of records to skip again, and
        saves a round trip to the broker in most checkpoints."""
        return bool(self.uncommitted) and (
            self.committed_at is None or now - self.committed_at >= COMMIT_EVERY
        )

    async def commit_positions(self, consumer: Consumer, now: datetime | None = None) -> None:
        """Commit the consumer offsets of the applied batches, for the partitions still
        owned."""
        positions = {tp: at for tp, at in self.uncommitted.items() if tp in self.assignment}
        self.uncommitted = {}
        if positions:
            await consumer.commit(positions)
        self.committed_at = now or self.committed_at

    def forget_due(self, now: datetime) -> bool:
        """Whether a batch's transaction deletes the acknowledged outbox rows: at least
        :data:`FORGET_AT` of them, or the last deletion :data:`FORGET_EVERY` ago. A row
        kept longer is published again by a partition's next owner after a crash, with
        its id (its readers drop the copy); deleting less often saves a statement in most
        checkpoints."""
        if not self.acknowledged:
            return False
        due = self.forgotten_at is None or now - self.forgotten_at >= FORGET_EVERY
        return due or len(self.acknowledged) >= FORGET_AT

    async def forget_acknowledged(self) -> None:
        """Delete the acknowledged outbox rows in a transaction of their own (a step with
        nothing to checkpoint)."""
        if self.outbox is None or not self.acknowledged:
            return
        forgotten = list(self.acknowledged)
        async with self.sessions() as session:
            await remove_from_outbox(session, self.outbox, forgotten)
            await session.commit()
        del self.acknowledged[: len(forgotten)]

    async def rewind(self, consumer: Consumer) -> None:
        """After a rollback: forget the assignment (learned again on the next poll) and
        rewind the consumer to its committed offsets."""
        self.assignment = frozenset()
        await consumer.seek_to_committed()
