"""Event logs read for replay (the engine's simulation, scoring's churn model): a JSONL file
of envelopes, the events topic, or the latest events read back from the topic's end.

Either way the events are kept as raw JSON with their time, sorted by time, and parsed one
at a time while they are replayed, so a large history costs little memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import ValidationError

from shared.bus import Bus, TopicPartition
from shared.contracts.events import EventEnvelope

MAX_SKIPPED_SHOWN = 20
TOPIC_POLL_RECORDS = 5000
MAX_IDLE_POLLS = 10
"""Empty polls in a row after which a partition whose records expired counts as read."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry that is not an event envelope: its line (or topic offset) and why."""

    where: str
    reason: str


class EventLog:
    """Event envelopes in time order (ties keep their reading order)."""

    def __init__(self) -> None:
        self.entries: list[tuple[float, int, bytes, str]] = []
        self.skipped: list[Skipped] = []
        self.skipped_count = 0
        self._added = 0

    def __len__(self) -> int:
        return len(self.entries)

    def add(
        self,
        raw: bytes,
        where: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        workspace_id: str | None = None,
    ) -> None:
        """Keep ``raw`` if it is an envelope within ``[since, until)`` (and the workspace)."""
        try:
            data = orjson.loads(raw)
            stamp = datetime.fromisoformat(data["timestamp"])
            if stamp.tzinfo is None:
                raise ValueError("timestamp has no time zone")
            if workspace_id is not None and data.get("workspace_id") != workspace_id:
                return
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            self.skip(where, f"not an event envelope: {exc}")
            return
        if (since is not None and stamp < since) or (until is not None and stamp >= until):
            return
        self._added += 1
        self.entries.append((stamp.timestamp(), self._added, raw, where))

    def keep_latest(self, count: int) -> None:
        """Keep only the ``count`` latest entries by time."""
        self.entries.sort()
        del self.entries[: max(0, len(self.entries) - count)]

    def skip(self, where: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_SKIPPED_SHOWN:
            self.skipped.append(Skipped(where, reason))

    def __iter__(self) -> Iterator[EventEnvelope]:
        """The envelopes by time; entries that do not validate are skipped (and noted)."""
        self.entries.sort()
        for _stamp, _index, raw, where in self.entries:
            try:
                yield EventEnvelope.model_validate_json(raw)
            except ValidationError as exc:
                self.skip(where, _first_error(exc))


def read_lines(
    lines: Iterable[bytes], *, since: datetime | None = None, until: datetime | None = None
) -> EventLog:
    """An event log from JSONL lines (one envelope per line; blank lines are ignored)."""
    log = EventLog()
    for number, line in enumerate(lines, start=1):
        if line.strip():
            log.add(line, f"line {number}", since=since, until=until)
    return log


async def read_topic(
    bus: Bus,
    topic: str,
    *,
    workspace_id: str,
    from_offset: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
) -> EventLog:
    """The workspace's events on ``topic`` up to its end when the read starts, from
    ``from_offset`` in every partition. Reads in a throwaway consumer group and commits
    nothing."""
    log = EventLog()
    consumer = await bus.subscribe(
        [topic], group_id=f"milepost-simulation-{uuid.uuid4().hex[:12]}", from_beginning=True
    )
    read: dict[TopicPartition, int] = {}
    ends: dict[TopicPartition, int] | None = None
    idle = 0
    try:
        while idle < MAX_IDLE_POLLS:
            records = await consumer.poll(max_records=TOPIC_POLL_RECORDS, timeout_ms=500)
            idle = 0 if records else idle + 1
            if ends is None:
                assigned = consumer.assignment()
                if not assigned:
                    continue
                ends = await bus.end_offsets(sorted(assigned, key=_order))
            for record in records:
                tp = record.topic_partition
                if record.offset >= ends.get(tp, 0):
                    continue
                read[tp] = record.offset + 1
                if record.offset >= from_offset:
                    log.add(
                        record.value,
                        f"{record.topic}[{record.partition}]@{record.offset}",
                        since=since,
                        until=until,
                        workspace_id=workspace_id,
                    )
            if all(read.get(tp, 0) >= end for tp, end in ends.items()):
                break
    finally:
        await consumer.close()
    return log


async def read_latest(bus: Bus, topic: str, *, workspace_id: str, count: int) -> EventLog:
    """The workspace's ``count`` latest events by time among the last ``count`` records of
    each partition of ``topic`` (read back from each partition's end, as it ends when the
    read starts, so a long history is not read). On a topic only this workspace writes,
    these are its ``count`` latest events; where other workspaces share its partitions,
    fewer of its events may be among those records. Commits nothing."""
    log = EventLog()
    async for batch in bus.read_tail(topic, per_partition=count):
        for record in batch:
            log.add(
                record.value,
                f"{record.topic}[{record.partition}]@{record.offset}",
                workspace_id=workspace_id,
            )
        if len(log) > 2 * count:
            log.keep_latest(count)
    log.keep_latest(count)
    return log


def _order(tp: TopicPartition) -> tuple[str, int]:
    return tp.topic, tp.partition


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    return f"{field}: {error['msg']}" if field else error["msg"]
