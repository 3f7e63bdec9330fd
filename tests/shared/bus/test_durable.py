"""The durable bus keeps what it acknowledged: records, offsets and committed offsets survive
a close and a reopen; its file is private; its retention is bounded and spares unread records.
(Its Kafka semantics are in the contract suite.)"""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.bus import OutgoingRecord, TopicPartition
from shared.bus.durable import DurableBus, Retention, retention_start
from shared.clock import FrozenClock
from shared.contracts.events import EventEnvelope
from shared.contracts.topics import TopicSpec
from shared.errors import StartRefused

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOPIC = "t.events"
AT = TopicPartition(TOPIC, 0)


def _spec(retention: timedelta | None = timedelta(days=1)) -> TopicSpec:
    return TopicSpec(TOPIC, "test", "key", EventEnvelope, partitions=1, retention=retention)


def _records(first: int, count: int) -> list[OutgoingRecord]:
    return [
        OutgoingRecord(TOPIC, b"account", b"%d" % i, (("n", b"\x00%d" % i),))
        for i in range(first, first + count)
    ]


async def _opened(path: Path, clock: FrozenClock, retention: Retention | None = None) -> DurableBus:
    bus = DurableBus(path, retention=retention, clock=clock)
    await bus.start()
    await bus.ensure_topics([_spec()], replication_factor=1)
    return bus


async def test_records_and_committed_offsets_survive_a_reopen(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    bus = await _opened(tmp_path / "bus.db", clock)
    await bus.publish(_records(0, 10))
    consumer = await bus.subscribe([TOPIC], group_id="g")
    first = await consumer.poll(timeout_ms=100)
    await consumer.commit({AT: 6})
    await bus.close()

    again = await _opened(tmp_path / "bus.db", clock)
    assert await again.end_offsets([AT]) == {AT: 10}
    await again.publish(_records(10, 1))
    resumed = await (await again.subscribe([TOPIC], group_id="g")).poll(timeout_ms=100)
    replayed = await (await again.subscribe([TOPIC], group_id="other")).poll(timeout_ms=100)
    await again.close()

    assert [(r.offset, r.value) for r in resumed] == [(i, b"%d" % i) for i in range(6, 11)]
    assert replayed[:10] == first
    assert first[3].headers == (("n", b"\x003"),)
    assert first[3].key == b"account"
    assert first[3].timestamp_ms == int(T0.timestamp() * 1000)


async def test_the_bus_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    bus = await _opened(tmp_path / "data" / "bus.db", FrozenClock(T0))
    await bus.publish(_records(0, 1))
    files = sorted((tmp_path / "data").iterdir())
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files}
    await bus.close()
    assert "bus.db" in modes
    assert set(modes.values()) == {0o600}


async def test_a_second_bus_on_the_same_file_is_refused(tmp_path: Path) -> None:
    bus = await _opened(tmp_path / "bus.db", FrozenClock(T0))
    second = DurableBus(tmp_path / "bus.db")
    try:
        with pytest.raises(StartRefused, match=r"bus\.db is in use by another process"):
            await second.start()
    finally:
        await second.close()
        await bus.close()


async def test_a_waiting_poll_is_woken_by_a_publish(tmp_path: Path) -> None:
    """The poll's own timeout is far beyond the test's: only the publish can end it."""
    bus = await _opened(tmp_path / "bus.db", FrozenClock(T0))
    consumer = await bus.subscribe([TOPIC], group_id="g")
    waiting = asyncio.create_task(consumer.poll(timeout_ms=3_600_000))
    await asyncio.sleep(0)
    await bus.publish(_records(0, 1))
    records = await waiting
    await bus.close()
    assert [r.value for r in records] == [b"0"]


async def test_retention_drops_old_records_once_every_group_read_them(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    bus = await _opened(tmp_path / "bus.db", clock)
    await bus.publish(_records(0, 10))
    slow = await bus.subscribe([TOPIC], group_id="slow")
    await slow.poll(timeout_ms=100)
    await slow.commit({AT: 6})
    await slow.close()
    fast = await bus.subscribe([TOPIC], group_id="fast")
    await fast.poll(timeout_ms=100)
    await fast.commit({AT: 10})
    await fast.close()

    clock.advance(timedelta(days=2))
    await bus.publish(_records(10, 1))  # applies the retention: more than a minute passed
    kept = await (await bus.subscribe([TOPIC], group_id="new")).poll(timeout_ms=100)
    ends = await bus.end_offsets([AT])
    await bus.close()

    assert [r.offset for r in kept] == [6, 7, 8, 9, 10]
    assert ends == {AT: 11}


async def test_retention_keeps_at_most_max_records_read_or_not(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    bus = await _opened(tmp_path / "bus.db", clock, Retention(max_records=3))
    await bus.publish(_records(0, 5))
    clock.advance(timedelta(minutes=2))
    await bus.publish(_records(5, 1))
    await bus.close()

    again = await _opened(tmp_path / "bus.db", clock, Retention(max_records=3))
    kept = await (await again.subscribe([TOPIC], group_id="g")).poll(timeout_ms=100)
    await again.close()
    assert [r.offset for r in kept] == [3, 4, 5]


async def test_retention_by_age_is_set_by_the_setting_over_the_topics(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    bus = await _opened(tmp_path / "bus.db", clock, Retention(max_age=timedelta(hours=1)))
    await bus.publish(_records(0, 4))
    clock.advance(timedelta(hours=2))
    dropped = await bus.file.trim(int(clock.now().timestamp() * 1000))
    kept = await (await bus.subscribe([TOPIC], group_id="g")).poll(timeout_ms=100)
    await bus.close()
    assert dropped == 4
    assert kept == []


@pytest.mark.parametrize(
    ("aged_below", "committed_below", "max_records", "expected"),
    [
        (8, None, 100, 8),  # nobody committed: age alone
        (8, 5, 100, 5),  # an unread record stays
        (8, 9, 100, 8),  # read but young
        (2, 9, 5, 5),  # the cap drops the oldest anyway
        (10, 10, 100, 10),  # everything old and read
        (0, None, 100, 3),  # never below the current start
    ],
)
def test_retention_start(
    aged_below: int, committed_below: int | None, max_records: int, expected: int
) -> None:
    assert (
        retention_start(
            start=3,
            end=10,
            aged_below=aged_below,
            committed_below=committed_below,
            max_records=max_records,
        )
        == expected
    )


async def test_members_joining_a_group_at_once_share_its_partitions(tmp_path: Path) -> None:
    """The group's committed offsets are read from the file once, whoever joins first."""
    bus = DurableBus(tmp_path / "bus.db", default_partitions=2)
    await bus.start()
    first, second = await asyncio.gather(
        bus.subscribe(["t.shared"], group_id="g"), bus.subscribe(["t.shared"], group_id="g")
    )
    owned = first.assignment(), second.assignment()
    await bus.close()
    assert all(owned)
    assert not owned[0] & owned[1]
