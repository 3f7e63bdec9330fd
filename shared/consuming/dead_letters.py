"""A record no consumer can read, kept whole on its topic's dead-letter topic."""

from __future__ import annotations

import logging
from datetime import datetime

from shared.bus import ConsumedRecord, OutgoingRecord
from shared.consuming.outbox import OutboxEntry
from shared.contracts import Topic
from shared.contracts.topics import DLQ_OF, DeadLetter


def dead_letter(
    record: ConsumedRecord, *, group: str, reason: str, now: datetime
) -> OutgoingRecord:
    """The :class:`DeadLetter` of ``record``, keyed like it; key and value decoded as
    UTF-8 with replacement characters."""
    letter = DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        consumer_group=group,
        reason=reason,
        key=record.key.decode("utf-8", "replace") if record.key is not None else None,
        value=record.value.decode("utf-8", "replace"),
        failed_at=now,
    )
    return OutgoingRecord(
        DLQ_OF[Topic(record.topic)], record.key or b"", letter.model_dump_json().encode()
    )


def dead_letter_entry(
    record: ConsumedRecord, *, group: str, reason: str, now: datetime
) -> OutboxEntry:
    """``record``'s dead letter as an outbox entry of its partition, with an id that is the
    same on every replay."""
    letter = dead_letter(record, group=group, reason=reason, now=now)
    return (f"dlq:{record.topic}:{record.partition}:{record.offset}", record.partition, letter)


def log_dead_letter(
    log: logging.Logger, record: ConsumedRecord, reason: str, **context: str
) -> None:
    """Warn on ``log`` that ``record`` went to its dead-letter topic, and why; ``context``
    adds fields (the consumer group)."""
    log.warning(
        "record sent to the dead-letter topic",
        extra={
            **context,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "reason": reason,
        },
    )
