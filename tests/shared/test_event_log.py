"""Reading a simulation's events: JSONL lines and the events topic, in time order."""

from __future__ import annotations

from datetime import timedelta

import orjson

from shared.bus import OutgoingRecord
from shared.bus.memory import InMemoryBus
from shared.event_log import read_latest, read_lines, read_topic
from tests.services.node_engine.simulation.tiny import T0, WORKSPACE, lines


def test_lines_are_replayed_in_time_order_and_bad_ones_are_noted() -> None:
    shuffled = [*reversed(lines()), '{"timestamp": "2026-03-02T10:00:00"}', "[1, 2"]
    log = read_lines(line.encode() for line in shuffled)
    assert len(log) == 7
    assert [e.message_id for e in log] == ["m1", "m2", "m3", "m4", "m5", "m6", "m7"]
    assert log.skipped_count == 3
    assert [s.where for s in log.skipped] == ["line 5", "line 10", "line 11"]
    assert "time zone" in log.skipped[1].reason


def test_an_envelope_that_does_not_validate_is_skipped_while_replaying() -> None:
    data = orjson.loads(lines()[0])
    data["type"] = "teleport"
    log = read_lines([orjson.dumps(data), lines()[1].encode()])
    assert [e.message_id for e in log] == ["m2"]
    assert log.skipped_count == 1
    assert log.skipped[0].where == "line 1"
    assert log.skipped[0].reason.startswith("type: Input should be")


def test_since_and_until_keep_a_window() -> None:
    log = read_lines(
        (line.encode() for line in lines()),
        since=T0 + timedelta(days=1),
        until=T0 + timedelta(days=3),
    )
    assert [e.message_id for e in log] == ["m3", "m4", "m5", "m6"]


async def test_the_topic_is_read_to_its_end_for_one_workspace() -> None:
    bus = InMemoryBus()
    await bus.start()
    envelopes = [line for line in lines() if line.startswith('{"schema_version"')]
    other = envelopes[0].replace(WORKSPACE, "ws_other").replace('"m1"', '"o1"')
    await bus.publish(
        [
            OutgoingRecord("milepost.events", f"k{i}".encode(), line.encode())
            for i, line in enumerate([*envelopes, other])
        ]
    )
    log = await read_topic(bus, "milepost.events", workspace_id=WORKSPACE)
    assert [e.message_id for e in log] == ["m1", "m2", "m3", "m4", "m5", "m6", "m7"]
    late = await read_topic(bus, "milepost.events", workspace_id=WORKSPACE, from_offset=100)
    assert len(late) == 0
    await bus.close()


async def test_the_latest_events_are_read_back_from_each_partitions_end() -> None:
    bus = InMemoryBus()
    await bus.start()
    envelopes = [line for line in lines() if line.startswith('{"schema_version"')]
    other = envelopes[0].replace(WORKSPACE, "ws_other").replace('"m1"', '"o1"')
    await bus.publish([OutgoingRecord("milepost.events", b"one", b"not an envelope")])
    await bus.publish(
        [OutgoingRecord("milepost.events", b"one", line.encode()) for line in envelopes]
    )
    await bus.publish([OutgoingRecord("milepost.events", b"two", other.encode())])

    latest = await read_latest(bus, "milepost.events", workspace_id=WORKSPACE, count=3)
    assert [e.message_id for e in latest] == ["m5", "m6", "m7"]
    everything = await read_latest(bus, "milepost.events", workspace_id=WORKSPACE, count=100)
    assert [e.message_id for e in everything] == ["m1", "m2", "m3", "m4", "m5", "m6", "m7"]
    assert everything.skipped_count == 1
    assert latest.skipped_count == 0, "the start of the partition is never read"
    await bus.close()
