"""The stream runtime: one fenced consumer loop, run by the engine, scoring and messaging.

A service supplies a :class:`Handler` (how to decode a record, load the states a batch
needs, apply it and write its effects); :class:`Stream` runs it, one step per batch, as a
pipeline of small stages. A batch is what one poll finds; when that is fewer records than
the handler's limit, and the poll did not have to wait for them (the stage was busy), it
waits :meth:`Handler.batch_wait_ms` for more (:meth:`Stream.poll`):

1. **decode** each record (:meth:`Handler.decode`); one that cannot be read becomes a dead
   letter with the reason (:class:`~shared.errors.InvalidMessage`);
2. **admit**: a record below its partition's applied offset is a replay and is skipped; the
   others move the partition's offset past them (:meth:`FencedMember.admit`);
3. **sift**: a record the group already applied is dropped: one with an origin (a
   stage's record stamped with the input record it was made from, :mod:`.origins`) when
   it comes at or below its partition's mark for that origin, which it moves otherwise;
   an event without one when the group applied its ``event_id`` at that stage
   (:mod:`.seen`), with one statement for the whole batch (on PostgreSQL the same
   statement records the others' ids in the batch's transaction);
4. **load** the states of the whole batch (:meth:`Handler.load`), in one read;
5. **apply** the batch to them (:meth:`Handler.handle`, pure: effects go into the
   :class:`Batch`, outgoing records into its outbox), letting the event loop run every
   few milliseconds (:meth:`Batch.pause`);
6. **checkpoint**, in this order, which is what makes every effect exactly-once:

   a. one database transaction writes the batch's effects (:meth:`Handler.write`), the
      outgoing records in the outbox table, the event ids applied (unless the sift
      recorded them) and each input partition's applied offset with its origin marks,
      fenced against another member having moved it;
   b. the outbox records are published and acknowledged by the bus;
   c. the consumer offsets are committed, at most every second (where a member starts
      reading; the applied offsets decide what is applied);
   d. the acknowledged outbox rows are deleted, with a later transaction.

   Once published, the batch is let go of a slice at a time (:meth:`Handler.spent`), so
   its objects are not all freed in one step of the event loop.

   A batch with nothing to write (:meth:`Handler.writes_nothing`: no effects, outgoing
   records, dead letters, event ids or origin marks) opens no transaction: its applied
   offsets go with the next checkpoint's, at most :data:`DEFER_AT_MOST` later, at once on
   an idle poll and on a stop. A crash meanwhile replays its records, which write nothing
   again.

A handler that :meth:`~Handler.overlaps_checkpoints` (on PostgreSQL) lets :meth:`Stream.run`
apply the next batch while the previous one's checkpoint (6) is in flight, so the
database's work and the handler's overlap, and lets the next batch's transaction (a) begin
while the previous one's records are still being published (b); :meth:`Stream.hand_off`
says what keeps the order above intact.

A crash after (a) leaves the outbox to the partition's next owner, who publishes it before
anything else (:meth:`FencedMember.sync_assignment`); records below the applied offset are
skipped, so a replay changes no state and emits nothing new; an event published twice (at
two offsets) is applied once, by its origin or its id. Outbox record ids are deterministic,
so a record published twice (a crash between b and d) carries the same id and its readers
drop the copy. A member without an outbox table (messaging's consumers emit nothing but
dead letters) publishes its dead letters before (a): at least once, with the source's
topic, partition and offset to tell a copy.

Each step of a batch is timed into the service's ``..._step_seconds`` histogram
(:data:`~shared.consuming.metrics.STEPS`): ``queued`` (from its oldest record's timestamp
to the batch's time), ``sift``, ``load``, ``apply``, ``wait`` (for the checkpoint in
flight), ``write``, ``hold`` and ``commit`` (a), and ``publish`` (b and c); a step that
raises is not timed, and a poll that handled nothing times nothing.

Failures say what happens next (:mod:`shared.errors`): a
:class:`~shared.errors.RetryableError` rolls the batch back, drops what the handler
cached, rewinds the consumer to its committed offsets and retries after the error's
``retry_after`` (at once for :class:`~shared.errors.PartitionMoved`). The database's and
the operating system's errors are wrapped into those at this edge (:func:`consumer_errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus import Bus, ConsumedRecord, Consumer, TopicPartition
from shared.bus.lag import LagGauge
from shared.clock import Clock
from shared.consuming.dead_letters import dead_letter_entry, log_dead_letter
from shared.consuming.member import FencedMember
from shared.consuming.metrics import STEPS
from shared.consuming.origins import Position
from shared.consuming.outbox import OutboxEntry, OutboxModel
from shared.consuming.seen import Sighting
from shared.db.statements import on_postgresql
from shared.errors import InvalidMessage, PartitionMoved, RetryableError, StoreUnavailable
from shared.slicing import Slicer, let_go

logger = logging.getLogger(__name__)


T = TypeVar("T")
K = TypeVar("K")
E = TypeVar("E")
"""What a handler collects from one batch; false when it has nothing to write."""
TaskT = TypeVar("TaskT", bound="asyncio.Task[Any]")


@dataclass
class Batch(Generic[E]):
    """One step's work, made durable by one checkpoint."""

    now: datetime
    effects: E
    started: float = field(default_factory=time.perf_counter)
    moves: dict[TopicPartition, tuple[int | None, int]] = field(default_factory=dict)
    """Per input partition: its applied offset before the batch and after it."""
    marks: dict[TopicPartition, dict[str, Position]] = field(default_factory=dict)
    """Per input partition whose origin marks the batch moved: all its marks after it."""
    outbox: list[OutboxEntry] = field(default_factory=list)
    rejected: list[tuple[ConsumedRecord, str]] = field(default_factory=list)
    """Records for the dead-letter topic, with the reason."""
    sightings: list[Sighting] = field(default_factory=list)
    sighted: bool = False
    """Whether the sift recorded event ids in the batch's session (on PostgreSQL)."""
    handled: int = 0
    """Records and other work (timers, sweeps) the step handled."""
    slices: Slicer = field(default_factory=Slicer)

    def reject(self, record: ConsumedRecord, reason: str) -> None:
        """Send ``record`` to its dead-letter topic with ``reason`` (with the checkpoint)."""
        self.rejected.append((record, reason))

    async def pause(self) -> None:
        """Let the event loop run other work (requests, timers) when this batch has held it
        for :data:`~shared.slicing.SLICE_S`: a batch of hundreds of records does not stall
        the process. What the batch applies and commits is the same."""
        await self.slices.pause()

    def __bool__(self) -> bool:
        return bool(self.moves or self.effects)


DEFER_AT_MOST = timedelta(seconds=1)
"""How long the applied offsets of batches with nothing to write wait for a checkpoint."""

QUIET_AFTER = timedelta(milliseconds=20)
"""A poll that waited this long for its first record found the stage idle: its batch is
applied at once, not gathered (:meth:`Stream.poll`)."""

READ_SLICE = 100
"""Records one read from the consumer returns at most: the bus unpacks a fetch's records
as they are read, so a read of hundreds would hold the event loop for milliseconds."""


async def read(consumer: Consumer, limit: int, *, timeout_ms: int) -> list[ConsumedRecord]:
    """Up to ``limit`` records, waiting up to ``timeout_ms`` for the first: those the
    consumer has at hand, read :data:`READ_SLICE` at a time with the event loop let run in
    between."""
    part = await consumer.poll(max_records=min(limit, READ_SLICE), timeout_ms=timeout_ms)
    records = list(part)
    while len(part) == READ_SLICE and len(records) < limit:
        await asyncio.sleep(0)
        part = await consumer.poll(max_records=min(limit - len(records), READ_SLICE), timeout_ms=0)
        records += part
    return records


def uncached(keys: Iterable[K], cache: Mapping[K, object]) -> set[K]:
    """Those of ``keys`` not in ``cache``, in time proportional to ``keys`` alone (a set
    minus ``cache.keys()`` walks the whole cache: milliseconds per batch at 100,000s)."""
    return {key for key in keys if key not in cache}


class Handler(ABC, Generic[T, E]):
    """What a service plugs into a :class:`Stream`: its decoding, loading, pure apply and
    writes. Also the service's worker: :meth:`run` and :meth:`step` drive its stream."""

    stream: Stream[T, E]

    @abstractmethod
    def decode(self, record: ConsumedRecord) -> T:
        """The record's payload; :class:`InvalidMessage` sends it to the dead-letter topic."""

    def sighting(self, record: ConsumedRecord, item: T) -> Sighting | None:
        """What deduplicates ``item`` (an event's id at its topic); ``None``: the applied
        offset alone (the default)."""
        return None

    @abstractmethod
    def effects(self) -> E:
        """An empty collection of one batch's effects."""

    async def refresh(self) -> None:
        """Before each poll: reload what the handler caches (a catalog), when due."""

    def poll_timeout_ms(self) -> int:
        """How long a poll waits for records."""
        return 200

    def batch_limit(self) -> int:
        """How many records a poll returns at most."""
        return 500

    def batch_wait_ms(self) -> int:
        """How long a poll that found records, but fewer than :meth:`batch_limit`, waits
        for more before the batch is applied (0: not at all)."""
        return 0

    def reset(self) -> None:
        """Drop what the handler cached: the assignment changed or a batch rolled back."""

    def writes_nothing(self, batch: Batch[E]) -> bool:
        """Whether ``batch``, applied, left nothing for :meth:`write` (default: unknown, so
        every batch is checkpointed)."""
        return False

    def overlaps_checkpoints(self) -> bool:
        """Whether :meth:`Stream.run` may load and apply a batch while the previous one's
        checkpoint is in flight (on PostgreSQL; SQLite has one writer). A handler that says
        yes keeps every effect of a batch in its cache until the batch is durable (it may
        forget only after :meth:`Stream.wait_committed`), and reads what a checkpoint
        writes besides its cached states only after :meth:`Stream.wait_committed` or
        knowing what the checkpoint in flight changes (the engine's due-timer lookup leaves
        out the timers that checkpoint fired)."""
        return False

    async def load(self, session: AsyncSession, items: Sequence[T], batch: Batch[E]) -> None:
        """Bring what ``items`` (and the handler's due work) need into memory, in bulk,
        read in ``session``."""

    @abstractmethod
    async def handle(self, items: Sequence[T], batch: Batch[E]) -> None:
        """Apply ``items`` (in record order) and the due work to the loaded states:
        effects into ``batch.effects``, outgoing records into ``batch.outbox``. Pure but
        for ``await batch.pause()`` between items, which keeps the event loop responsive."""

    @abstractmethod
    async def write(self, session: AsyncSession, batch: Batch[E]) -> None:
        """Write the batch's effects in ``session``; flush only (the stream commits)."""

    def committed(self, batch: Batch[E]) -> None:
        """After the checkpoint's transaction committed (caches, metrics)."""

    def spent(self, effects: E) -> Iterable[list[Any] | dict[Any, Any]]:
        """The containers of a published batch's ``effects`` that nothing else holds: the
        stream empties them a slice at a time (:func:`~shared.slicing.let_go`), so their
        objects are not all freed in one step of the event loop. Default: none."""
        return ()

    async def reported(self) -> None:
        """After the stream reported the lag (at most every few seconds)."""

    @abstractmethod
    def count(self, record: ConsumedRecord, outcome: str, n: int = 1) -> None:
        """Count ``n`` records like ``record`` by outcome (replayed, duplicate, dead_letter)."""

    # -- the worker's surface --------------------------------------------------------

    async def run(self) -> None:
        await self.stream.run()

    async def step(self, consumer: Consumer) -> int:
        """One poll and its checkpoint; how many records and other work it handled."""
        return await self.stream.step(consumer)

    @property
    def member(self) -> FencedMember:
        return self.stream.member

    @property
    def applied(self) -> dict[TopicPartition, int]:
        """The next offset to apply per owned partition, as of the last checkpoint."""
        return self.stream.member.applied

    @property
    def ready(self) -> asyncio.Event:
        """Set once a step completed."""
        return self.stream.ready


@dataclass(frozen=True, slots=True)
class StreamMetrics:
    """The lag gauge, retries counter and step histogram
    (:func:`~shared.consuming.metrics.steps_histogram`) a stream sets, labelled ``*labels``
    first (the consumer group, for a service that runs several)."""

    lag: Gauge
    retries: Counter
    steps: Histogram
    labels: tuple[str, ...] = ()


class StepTimes:
    """How long each step of a batch took (:data:`~shared.consuming.metrics.STEPS`), observed
    into a stream's step histogram, its children bound once."""

    def __init__(self, metrics: StreamMetrics) -> None:
        self.children = {step: metrics.steps.labels(*metrics.labels, step) for step in STEPS}

    def observe(self, steps: Mapping[str, float]) -> None:
        for step, seconds in steps.items():
            self.children[step].observe(max(0.0, seconds))


@contextlib.contextmanager
def timed(steps: dict[str, float], step: str) -> Iterator[None]:
    """Put the block's duration into ``steps[step]``; a block that raises puts nothing."""
    started = time.perf_counter()
    yield
    steps[step] = time.perf_counter() - started


class ServiceSettings(Protocol):
    """What a service worker's stream reads from its settings."""

    @property
    def group_id(self) -> str: ...


class ServiceMetrics(Protocol):
    """What a service worker's stream reads from its metrics."""

    @property
    def lag(self) -> Gauge: ...

    @property
    def retries(self) -> Counter: ...

    @property
    def steps(self) -> Histogram: ...


class ServiceHandler(Handler[T, E]):
    """A service's worker (the engine's, scoring's): a handler that keeps the bus, sessions
    and clock it is given and runs in a stream of its own (:meth:`attach_stream`)."""

    bus: Bus
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock

    def attach_stream(
        self,
        topics: Sequence[str],
        outbox: OutboxModel,
        settings: ServiceSettings,
        metrics: ServiceMetrics,
    ) -> None:
        """Run in a stream on ``topics`` in the consumer group ``settings.group_id``, the
        outgoing records waiting in ``outbox``, lag and retries counted in ``metrics``."""
        Stream(
            self,
            bus=self.bus,
            sessions=self.sessions,
            clock=self.clock,
            group_id=settings.group_id,
            topics=topics,
            metrics=StreamMetrics(metrics.lag, metrics.retries, metrics.steps),
            outbox=outbox,
        )


class Stream(Generic[T, E]):
    """Runs ``handler`` on ``topics`` in ``group_id`` (see the module docstring); with an
    ``outbox`` model, its outgoing records wait there. Not safe for concurrent use."""

    def __init__(
        self,
        handler: Handler[T, E],
        *,
        bus: Bus,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        group_id: str,
        topics: Sequence[str],
        metrics: StreamMetrics,
        outbox: OutboxModel | None = None,
    ) -> None:
        self.handler = handler
        self.bus = bus
        self.sessions = sessions
        self.clock = clock
        self.group_id = group_id
        self.topics = tuple(topics)
        self.metrics = metrics
        self.member = FencedMember(bus=bus, sessions=sessions, group_id=group_id, outbox=outbox)
        self.lag = LagGauge(bus, metrics.lag, group_labels=metrics.labels)
        self.times = StepTimes(metrics)
        self.ready = asyncio.Event()
        self.in_flight: asyncio.Task[list[str]] | None = None
        """The transaction of the last batch's checkpoint until :meth:`wait_committed`
        saw it commit (its result: the outbox rows it stored)."""
        self.publishing: asyncio.Task[None] | None = None
        """The publishing of the last batch's outbox records until :meth:`settle` saw it
        finish; each batch's waits for the one before."""
        self.behind: asyncio.Task[None] | None = None
        """The publishing of the batch before the last, which :meth:`wait_committed` waits
        for: the records published lag the transactions by one batch at most."""
        self.deferred: dict[TopicPartition, tuple[int | None, int]] = {}
        """The offset moves of the batches with nothing to write since the last checkpoint
        (:meth:`defer`), from the applied offsets stored."""
        self.deferred_at = datetime.min.replace(tzinfo=UTC)
        handler.stream = self

    async def run(self) -> None:
        """Subscribe and step until cancelled, each batch's checkpoint overlapping the next
        batch when the handler :meth:`~Handler.overlaps_checkpoints` on PostgreSQL."""
        consumer = await self.bus.subscribe(list(self.topics), group_id=self.group_id)
        try:
            overlap = self.handler.overlaps_checkpoints() and await self._on_postgresql()
            while True:
                await self.step(consumer, overlap=overlap)
        finally:
            await self.leave(consumer)

    async def _on_postgresql(self) -> bool:
        async with self.sessions() as session:
            return on_postgresql(session)

    async def leave(self, consumer: Consumer) -> None:
        """Finish the checkpoint in flight, delete the acknowledged outbox rows and commit
        the consumer offsets (else a next owner publishes those rows again and skips those
        records again), then close the consumer."""
        try:
            with consumer_errors():
                await self.settle()
                await self.store_deferred(consumer)
                await self.member.forget_acknowledged()
                await self.member.commit_positions(consumer)
        except RetryableError as exc:
            logger.warning("stopped before the last commit", extra={"error": str(exc)})
        finally:
            await consumer.close()

    async def step(self, consumer: Consumer, *, overlap: bool = False) -> int:
        """One poll and its checkpoint; how many records and other work it handled (0
        after a rollback). With ``overlap`` the checkpoint is left in flight and the next
        step finishes it (:meth:`hand_off`)."""
        try:
            with consumer_errors():
                handled = await self.advance(consumer)
                if not overlap:
                    await self.settle()
                return handled
        except RetryableError as exc:
            await self.roll_back(consumer, exc)
            if exc.retry_after:
                await asyncio.sleep(exc.retry_after)
        return 0

    async def advance(self, consumer: Consumer) -> int:
        """Poll, decode, sift, load and apply a batch, wait for the checkpoint in flight to
        commit, and hand this batch's off (:meth:`hand_off`)."""
        handler = self.handler
        await handler.refresh()
        records = await self.poll(consumer)
        if consumer.assignment() != self.member.assignment:
            await self.settle()
        if await self.member.sync_assignment(consumer):
            handler.reset()
            self.deferred = {}
        batch = Batch(
            self.clock.now(), handler.effects(), moves=dict(self.deferred), handled=len(records)
        )
        steps = _queued(records, batch.now)
        items = await self.decode(records, batch)
        session = self.sessions()
        try:
            with timed(steps, "sift"):
                fresh = [item for _, item in await self.sift(session, items, batch)]
            with timed(steps, "load"):
                await handler.load(session, fresh, batch)
                await _end_reads(session)
            with timed(steps, "apply"):
                await handler.handle(fresh, batch)
            with timed(steps, "wait"):
                await self.wait_committed()
        except BaseException:
            await session.close()
            raise
        if batch.handled:
            self.times.observe(steps)
        if records and self.defers(batch):
            await session.close()
            self.defer(batch)
        elif batch:
            self.hand_off(consumer, session, batch)
        else:
            await session.close()
            await self.settle()
            await self.member.forget_acknowledged()
            await self.member.commit_positions(consumer)
        self.ready.set()
        await self.report_lag()
        return batch.handled

    def defers(self, batch: Batch[E]) -> bool:
        """Whether ``batch`` has nothing to write and the deferred offsets may wait."""
        if batch.outbox or batch.rejected or batch.sightings or batch.sighted or batch.marks:
            return False
        if self.deferred and batch.now - self.deferred_at >= DEFER_AT_MOST:
            return False
        return self.handler.writes_nothing(batch)

    def defer(self, batch: Batch[E]) -> None:
        """Apply ``batch``'s offset moves in memory only; the next checkpoint stores them
        (its moves start from them), fenced from the offsets stored before."""
        if not self.deferred:
            self.deferred_at = batch.now
        for tp, (_previous, applied) in batch.moves.items():
            self.member.applied[tp] = applied
        self.deferred = batch.moves

    async def store_deferred(self, consumer: Consumer) -> None:
        """Checkpoint the deferred offset moves, if any (at a stop)."""
        if not self.deferred:
            return
        batch = Batch(self.clock.now(), self.handler.effects(), moves=self.deferred)
        self.deferred = {}
        async with self.sessions() as session:
            held = await self.commit(session, batch)
        await self.member.release(consumer, batch.moves, batch.outbox, held, now=batch.now)

    def hand_off(self, consumer: Consumer, session: AsyncSession, batch: Batch[E]) -> None:
        """Start ``batch``'s checkpoint in ``session`` (which it closes): its transaction
        (:meth:`commit`), then the publishing of its records (:meth:`publish`), each a task
        of its own. In a step with ``overlap`` the next batch is admitted, sifted, loaded
        and applied meanwhile, and the checkpoint order stays intact:

        - the next batch is admitted from this one's applied offsets (set here), and its
          transaction starts only once this one's committed (:meth:`wait_committed`), so
          the offsets' fence and the outbox keep the batches' order; its records are
          published only once this batch's are, so the publishing keeps it too, and the
          batch after it is handed off only once this one's are (:attr:`behind`), so at a
          crash the records of two committed batches at most wait in the outbox;
        - its sift waits on this batch's uncommitted event ids (a unique key), so an event
          in both batches is still applied once;
        - the handler keeps this batch's effects in its cache and reads nothing else this
          checkpoint writes before :meth:`wait_committed`
          (:meth:`Handler.overlaps_checkpoints`);
        - a failure of this checkpoint surfaces at the next :meth:`wait_committed` or
          :meth:`settle`, inside the next step, which rolls back, drops the cache and
          rewinds both batches (the outbox rows of every committed batch are published
          again, in order, by :meth:`FencedMember.sync_assignment`)."""
        for tp, (_previous, applied) in batch.moves.items():
            self.member.applied[tp] = applied
        self.member.marks.update(batch.marks)
        self.deferred = {}
        committing = asyncio.create_task(self.commit_closing(session, batch))
        self.in_flight = committing
        self.behind = self.publishing
        self.publishing = asyncio.create_task(
            self.publish(consumer, batch, committing, after=self.publishing)
        )

    async def commit_closing(self, session: AsyncSession, batch: Batch[E]) -> list[str]:
        try:
            return await self.commit(session, batch)
        finally:
            await session.close()

    async def wait_committed(self) -> None:
        """Wait for the transaction of the checkpoint in flight, if any, and for the
        publishing of the checkpoints before it; raises what they raised, or what
        publishing the last checkpoint's records raised. A caller cancelled meanwhile
        leaves them running (:meth:`leave` finishes them)."""
        try:
            await _shielded(self.in_flight)
            await _shielded(self.behind)
        finally:
            self.in_flight, self.behind = _pending(self.in_flight), _pending(self.behind)
        publishing = self.publishing
        if publishing is not None and publishing.done():
            self.publishing = None
            publishing.result()

    async def settle(self) -> None:
        """Wait for the checkpoint in flight to finish: committed and its records
        published (:meth:`wait_committed`, then the publishing, awaited even when the
        transaction failed); raises what either raised."""
        try:
            await self.wait_committed()
        finally:
            try:
                await _shielded(self.publishing)
            finally:
                self.publishing = _pending(self.publishing)
                if self.publishing is None:
                    self.behind = None

    async def poll(self, consumer: Consumer) -> list[ConsumedRecord]:
        """The next batch: what one poll finds and, when that is fewer records than the
        handler's limit, what else came within its :meth:`~Handler.batch_wait_ms`. Under
        load, larger batches spread each checkpoint's fixed cost (its round trips to the
        database and the broker) over more records, freeing the CPU the pipeline shares.
        A poll that waited :data:`QUIET_AFTER` for its first record found the stage idle,
        with nothing more likely to come within the wait: its batch is applied at once."""
        limit, wait = self.handler.batch_limit(), self.handler.batch_wait_ms()
        asked = self.clock.now()
        records = await read(consumer, limit, timeout_ms=self.handler.poll_timeout_ms())
        quiet = self.clock.now() - asked >= QUIET_AFTER
        if records and wait and len(records) < limit and not quiet:
            await asyncio.sleep(wait / 1000)
            records += await read(consumer, limit - len(records), timeout_ms=0)
        return records

    async def report_lag(self) -> None:
        """Set the lag gauge per owned partition, and let the handler report with it (at
        most every few seconds)."""
        if await self.lag.report(self.member.assignment, self.member.applied):
            await self.handler.reported()

    async def decode(
        self, records: Sequence[ConsumedRecord], batch: Batch[E]
    ) -> list[tuple[ConsumedRecord, T]]:
        """The admitted records that decode, with their payload; the others rejected."""
        decoded: list[tuple[ConsumedRecord, T]] = []
        for record in records:
            await batch.pause()
            if not self.member.admit(record, batch.moves):
                self.handler.count(record, "replayed")
            else:
                try:
                    decoded.append((record, self.handler.decode(record)))
                except InvalidMessage as exc:
                    batch.reject(record, str(exc))
        return decoded

    async def sift(
        self, session: AsyncSession, items: list[tuple[ConsumedRecord, T]], batch: Batch[E]
    ) -> list[tuple[ConsumedRecord, T]]:
        """``items`` less the records already applied (counted as ``duplicate``): by their
        origin, moving the batch's marks, or else by their event id at their stage, their
        sightings recorded in ``session`` or put into the batch."""
        arrived: list[tuple[ConsumedRecord, T]] = []
        marked: set[int] = set()
        for pair in items:
            first = self.member.first_arrival(pair[0], batch.marks)
            if first is False:
                self.handler.count(pair[0], "duplicate")
                continue
            arrived.append(pair)
            if first:
                marked.add(id(pair))
        if len(marked) == len(arrived):
            return arrived
        sifted = await self.member.first_sightings(
            arrived,
            lambda pair: None if id(pair) in marked else self.handler.sighting(*pair),
            now=batch.now,
            session=session,
        )
        for record, _ in sifted.duplicates:
            self.handler.count(record, "duplicate")
        batch.sightings = sifted.sightings
        batch.sighted = sifted.recorded
        return sifted.fresh

    async def commit(self, session: AsyncSession, batch: Batch[E]) -> list[str]:
        """The checkpoint's transaction: effects, outbox, sightings and offsets (see the
        module docstring); the ids of the outbox rows it stored."""
        letters = [self.dead_letter(record, reason, batch) for record, reason in batch.rejected]
        if self.member.outbox is None:
            if letters:
                await self.bus.publish([record for _, _, record in letters])
        else:
            batch.outbox.extend(letters)
        steps: dict[str, float] = {}
        with timed(steps, "write"):
            await self.handler.write(session, batch)
        with timed(steps, "hold"):
            held = await self.member.hold(
                session,
                batch.moves,
                batch.outbox,
                sightings=batch.sightings,
                marks=batch.marks,
                now=batch.now,
            )
        with timed(steps, "commit"):
            await session.commit()
        self.times.observe(steps)
        self.member.committed()
        self.handler.committed(batch)
        return held

    async def publish(
        self,
        consumer: Consumer,
        batch: Batch[E],
        committing: asyncio.Task[list[str]],
        *,
        after: asyncio.Task[None] | None,
    ) -> None:
        """Once ``batch``'s transaction committed and the batch before it (``after``)
        published its records: publish ``batch``'s and commit the consumer offsets when
        due. Nothing when the transaction failed (its own task reports that); what the
        batch before raised, when it failed."""
        await asyncio.wait([committing])
        if after is not None:
            await after
        if committing.cancelled() or committing.exception() is not None:
            return
        steps: dict[str, float] = {}
        with timed(steps, "publish"):
            await self.member.release(
                consumer, batch.moves, batch.outbox, committing.result(), now=batch.now
            )
        self.times.observe(steps)
        await let_go((batch.outbox, batch.sightings, *self.handler.spent(batch.effects)))

    def dead_letter(self, record: ConsumedRecord, reason: str, batch: Batch[E]) -> OutboxEntry:
        self.handler.count(record, "dead_letter")
        log_dead_letter(logger, record, reason, group=self.group_id)
        return dead_letter_entry(record, group=self.group_id, reason=reason, now=batch.now)

    async def roll_back(self, consumer: Consumer, exc: RetryableError) -> None:
        logger.warning(
            "batch rolled back; retrying",
            extra={"group": self.group_id, "reason": exc.reason, "error": str(exc)},
        )
        self.metrics.retries.labels(*self.metrics.labels, exc.reason).inc()
        with contextlib.suppress(Exception):
            await self.settle()
        self.handler.reset()
        await self.member.rewind(consumer)


def _queued(records: Sequence[ConsumedRecord], now: datetime) -> dict[str, float]:
    """The ``queued`` step of a batch: how long its oldest record waited, from its
    timestamp (the producer's clock, or the broker's) to the batch's time."""
    if not records:
        return {}
    return {"queued": now.timestamp() - min(record.timestamp_ms for record in records) / 1000}


async def _shielded(task: asyncio.Task[Any] | None) -> None:
    """Wait for ``task``, if any, without cancelling it when the caller is cancelled;
    raises what it raised."""
    if task is not None:
        await asyncio.shield(task)


def _pending(task: TaskT | None) -> TaskT | None:
    """``task`` while it runs; ``None`` once it is done (its outcome was reported)."""
    return None if task is None or task.done() else task


async def _end_reads(session: AsyncSession) -> None:
    """On SQLite, end the read transaction before the writes: a write cannot follow a read
    snapshot another connection has written past since. PostgreSQL keeps one transaction."""
    if session.in_transaction() and not on_postgresql(session):
        await session.commit()


@contextlib.contextmanager
def consumer_errors() -> Iterator[None]:
    """The database's and the operating system's errors as consumer errors: a unique key
    another member wrote first is :class:`PartitionMoved`, any other is
    :class:`StoreUnavailable`."""
    try:
        yield
    except IntegrityError as exc:
        raise PartitionMoved(f"another member wrote first: {exc.orig}") from exc
    except (SQLAlchemyError, OSError) as exc:
        raise StoreUnavailable(str(exc)) from exc
