"""The embedded mode's bus: Kafka's semantics (:mod:`shared.bus.log`) over an append-only
log per partition in one SQLite file, so what a publish acknowledged survives a crash.

- Durable: WAL with ``synchronous=FULL``; a publish returns once its transaction is on
  disk, and consumer groups' committed offsets are kept the same way.
- One process: the file is held with SQLite's exclusive locking mode, so a second process
  on the same data folder is refused instead of writing the same offsets.
- Off the event loop: every SQLite call runs on one dedicated thread, in order.
- Bounded: a partition drops records past its topic's retention once every consumer group
  that committed on it has read them, and always keeps at most ``max_records``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from shared.bus.log import LogBus
from shared.bus.protocol import ConsumedRecord, OutgoingRecord, TopicPartition
from shared.clock import Clock
from shared.errors import BusUnavailable, StartRefused

T = TypeVar("T")

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    topic TEXT PRIMARY KEY, partitions INTEGER NOT NULL, retention_ms INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partitions (
    topic TEXT NOT NULL, partition INTEGER NOT NULL,
    log_start INTEGER NOT NULL, log_end INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, record_offset INTEGER NOT NULL,
    key BLOB, value BLOB NOT NULL, headers TEXT NOT NULL, timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (topic, partition, record_offset)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS committed (
    group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Retention:
    """How much a partition keeps, like Kafka's ``retention.ms`` and ``retention.bytes``."""

    max_age: timedelta | None = None
    """Records older than this go once every group read them; ``None``: the topic's own
    retention (7 days for most topics)."""
    max_records: int = 1_000_000
    """Records kept per partition at most, read or not."""
    check_every: timedelta = timedelta(minutes=1)
    """How often a publish also applies the retention."""


def retention_start(
    *, start: int, end: int, aged_below: int, committed_below: int | None, max_records: int
) -> int:
    """A partition's new log start: records below ``aged_below`` are past their age and
    go when every group committed past them (``committed_below``: the lowest committed
    offset, ``None`` when no group committed); beyond ``max_records`` the oldest go anyway."""
    aged = aged_below if committed_below is None else min(aged_below, committed_below)
    return min(end, max(start, aged, end - max_records))


class SqliteLog:
    """A :class:`shared.bus.log.PartitionLog` in the SQLite file at ``path`` (mode 0600)."""

    def __init__(self, path: Path, retention: Retention) -> None:
        self.path = path
        self.retention = retention
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._topics: dict[str, tuple[int, int | None]] = {}
        self._starts: dict[TopicPartition, int] = {}
        self._ends: dict[TopicPartition, int] = {}
        """Written on the log's thread once a transaction committed; read anywhere."""
        self._trim_due_ms = 0

    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="milepost-bus")
        await self._run(self._open)

    async def close(self) -> None:
        if self._executor is not None:
            await self._run(self._close)
            self._executor.shutdown(wait=False)
            self._executor = None

    def partitions(self, topic: str) -> int | None:
        found = self._topics.get(topic)
        return None if found is None else found[0]

    def end_offset(self, tp: TopicPartition) -> int:
        return self._ends.get(tp, 0)

    async def create_topic(self, topic: str, partitions: int, retention_ms: int | None) -> None:
        if topic not in self._topics:
            await self._run(self._create_topic, topic, partitions, retention_ms)

    async def append(self, placed: Sequence[tuple[int, OutgoingRecord]], timestamp_ms: int) -> None:
        await self._run(self._append, placed, timestamp_ms)

    async def read(
        self, positions: Sequence[tuple[TopicPartition, int]], limit: int
    ) -> list[ConsumedRecord]:
        return await self._run(self._read, positions, limit)

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        return await self._run(self._committed, group)

    async def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        await self._run(self._commit, group, offsets)

    async def trim(self, now_ms: int) -> int:
        """Apply the retention now; how many records went."""
        return await self._run(self._trim, now_ms)

    async def _run(self, work: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            raise BusUnavailable(f"the bus file {self.path} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    # Everything below runs on the log's own thread.

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(self.path, 0o600)
        db = sqlite3.connect(self.path, timeout=2, isolation_level=None)
        try:
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            with _transaction(db):
                for statement in _SCHEMA.split(";"):
                    db.execute(statement)
        except sqlite3.Error as exc:
            db.close()
            raise StartRefused(_unusable(self.path, exc)) from exc
        self._db = db
        self._load()

    def _load(self) -> None:
        db = self._connection()
        self._topics = {
            topic: (partitions, retention_ms)
            for topic, partitions, retention_ms in db.execute("SELECT * FROM topics")
        }
        rows = db.execute("SELECT topic, partition, log_start, log_end FROM partitions")
        for topic, partition, start, end in rows:
            self._starts[TopicPartition(topic, partition)] = start
            self._ends[TopicPartition(topic, partition)] = end

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise BusUnavailable(f"the bus file {self.path} is not open")
        return self._db

    def _create_topic(self, topic: str, partitions: int, retention_ms: int | None) -> None:
        db = self._connection()
        with _bus_errors(self.path), _transaction(db):
            db.execute(
                "INSERT OR IGNORE INTO topics VALUES (?, ?, ?)", (topic, partitions, retention_ms)
            )
            db.executemany(
                "INSERT OR IGNORE INTO partitions VALUES (?, ?, 0, 0)",
                [(topic, p) for p in range(partitions)],
            )
        self._load()

    def _append(self, placed: Sequence[tuple[int, OutgoingRecord]], timestamp_ms: int) -> None:
        db = self._connection()
        ends: dict[TopicPartition, int] = {}
        rows = []
        for partition, record in placed:
            tp = TopicPartition(record.topic, partition)
            offset = ends.get(tp, self._ends[tp])
            ends[tp] = offset + 1
            headers = json.dumps([[name, value.hex()] for name, value in record.headers])
            rows.append(
                (tp.topic, partition, offset, record.key, record.value, headers, timestamp_ms)
            )
        with _bus_errors(self.path), _transaction(db):
            db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            db.executemany(
                "UPDATE partitions SET log_end = ? WHERE topic = ? AND partition = ?",
                [(end, tp.topic, tp.partition) for tp, end in ends.items()],
            )
        self._ends.update(ends)
        if timestamp_ms >= self._trim_due_ms:
            try:
                self._trim(timestamp_ms)
            except BusUnavailable:  # the records are on disk: the publish stands
                logger.warning("retention not applied; tried again later", exc_info=True)

    def _read(
        self, positions: Sequence[tuple[TopicPartition, int]], limit: int
    ) -> list[ConsumedRecord]:
        db = self._connection()
        taken: list[ConsumedRecord] = []
        for tp, position in positions:
            if len(taken) >= limit:
                break
            with _bus_errors(self.path):
                rows = db.execute(
                    "SELECT record_offset, key, value, headers, timestamp_ms FROM records"
                    " WHERE topic = ? AND partition = ? AND record_offset >= ?"
                    " ORDER BY record_offset LIMIT ?",
                    (tp.topic, tp.partition, position, limit - len(taken)),
                ).fetchall()
            taken += [
                ConsumedRecord(
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=offset,
                    key=key,
                    value=value,
                    headers=tuple((name, bytes.fromhex(raw)) for name, raw in json.loads(headers)),
                    timestamp_ms=timestamp_ms,
                )
                for offset, key, value, headers, timestamp_ms in rows
            ]
        return taken

    def _committed(self, group: str) -> dict[TopicPartition, int]:
        with _bus_errors(self.path):
            rows = self._connection().execute(
                "SELECT topic, partition, next_offset FROM committed WHERE group_id = ?", (group,)
            )
            return {TopicPartition(topic, partition): offset for topic, partition, offset in rows}

    def _commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        db = self._connection()
        with _bus_errors(self.path), _transaction(db):
            db.executemany(
                "INSERT INTO committed VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE"
                " SET next_offset = excluded.next_offset",
                [(group, tp.topic, tp.partition, offset) for tp, offset in offsets.items()],
            )

    def _trim(self, now_ms: int) -> int:
        db = self._connection()
        self._trim_due_ms = now_ms + int(self.retention.check_every.total_seconds() * 1000)
        starts: dict[TopicPartition, int] = {}
        with _bus_errors(self.path), _transaction(db):
            committed = {
                TopicPartition(topic, partition): lowest
                for topic, partition, lowest in db.execute(
                    "SELECT topic, partition, MIN(next_offset) FROM committed"
                    " GROUP BY topic, partition"
                )
            }
            for tp, end in self._ends.items():
                start = retention_start(
                    start=self._starts[tp],
                    end=end,
                    aged_below=self._aged_below(tp, now_ms),
                    committed_below=committed.get(tp),
                    max_records=self.retention.max_records,
                )
                if start > self._starts[tp]:
                    starts[tp] = start
                    self._drop_below(tp, start)
        dropped = sum(start - self._starts[tp] for tp, start in starts.items())
        self._starts.update(starts)
        return dropped

    def _aged_below(self, tp: TopicPartition, now_ms: int) -> int:
        """The offset of the partition's oldest record within its age limit (the end when
        every record is older; the start when the topic keeps records of any age)."""
        age = self.retention.max_age
        age_ms = int(age.total_seconds() * 1000) if age is not None else self._topics[tp.topic][1]
        if age_ms is None:
            return self._starts[tp]
        # In offset order from the start, stopping at the first young record: the cost is
        # the old records, which are about to go.
        row = (
            self._connection()
            .execute(
                "SELECT record_offset FROM records WHERE topic = ? AND partition = ?"
                " AND timestamp_ms >= ? ORDER BY record_offset LIMIT 1",
                (tp.topic, tp.partition, now_ms - age_ms),
            )
            .fetchone()
        )
        return self._ends[tp] if row is None else int(row[0])

    def _drop_below(self, tp: TopicPartition, start: int) -> None:
        db = self._connection()
        db.execute(
            "DELETE FROM records WHERE topic = ? AND partition = ? AND record_offset < ?",
            (tp.topic, tp.partition, start),
        )
        db.execute(
            "UPDATE partitions SET log_start = ? WHERE topic = ? AND partition = ?",
            (start, tp.topic, tp.partition),
        )


class DurableBus(LogBus):
    """The bus of embedded mode, in the SQLite file ``path``."""

    def __init__(
        self,
        path: Path,
        *,
        retention: Retention | None = None,
        default_partitions: int = 4,
        clock: Clock | None = None,
    ) -> None:
        self.file = SqliteLog(path, retention or Retention())
        super().__init__(self.file, default_partitions=default_partitions, clock=clock)

    async def start(self) -> None:
        """Open the file (raises :class:`StartRefused` when it cannot be used) and apply
        the retention."""
        await super().start()
        await self.file.trim(int(self.clock.now().timestamp() * 1000))


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@contextmanager
def _bus_errors(path: Path) -> Iterator[None]:
    """Turn a failed read or write into :class:`BusUnavailable` (a write: not acknowledged)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise BusUnavailable(f"the bus file {path} failed: {exc!r}") from exc


def _unusable(path: Path, exc: sqlite3.Error) -> str:
    if "locked" in str(exc):
        return (
            f"the bus file {path} is in use by another process: only one Milepost process "
            "may use an embedded data folder at a time"
        )
    return f"the bus file {path} cannot be used: {exc}"
