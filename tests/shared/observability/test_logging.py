"""aiokafka's repeated messages are rate-limited: one per interval per logger, level and
template, the next one saying how many were suppressed; other loggers pass untouched."""

from __future__ import annotations

import logging

from shared.observability.logging import RepeatFilter


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str = "Unable connect to node with id %s: %s") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, (1, "refused"), None)


def test_one_identical_message_per_interval_then_the_count_of_those_suppressed() -> None:
    clock = Ticks()
    repeats = RepeatFilter(interval=10, clock=clock)
    assert repeats.filter(record("aiokafka"))
    assert not any(repeats.filter(record("aiokafka")) for _ in range(3000))
    assert repeats.filter(record("aiokafka.conn"))  # another logger
    assert repeats.filter(record("aiokafka", "Unable to update metadata from %s"))
    clock.now = 10.0
    released = record("aiokafka")
    assert repeats.filter(released)
    assert released.__dict__["suppressed"] == 3000
    assert not repeats.filter(record("aiokafka"))


def test_other_loggers_are_never_filtered() -> None:
    repeats = RepeatFilter(interval=10, clock=Ticks())
    assert all(repeats.filter(record("aiokafkaesque")) for _ in range(5))
    assert all(repeats.filter(record("milepost.engine")) for _ in range(5))
