"""A dead letter keeps the record whole, with the reason, and the same outbox id on every
replay."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.bus import ConsumedRecord
from shared.consuming.dead_letters import dead_letter, dead_letter_entry
from shared.contracts import Topic
from shared.contracts.topics import DeadLetter

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
MALFORMED = ConsumedRecord(Topic.SCORES, 4, 17, b"ws/u/u1", b"\xff{", (), 0)


def test_a_dead_letter_keeps_the_record_and_the_reason() -> None:
    letter = dead_letter(MALFORMED, group="engine", reason="bad", now=T0)
    assert (letter.topic, letter.key) == (Topic.SCORES_DLQ, b"ws/u/u1")
    parsed = DeadLetter.model_validate_json(letter.value)
    assert (parsed.topic, parsed.partition, parsed.offset, parsed.reason) == (
        "milepost.scores",
        4,
        17,
        "bad",
    )
    assert (parsed.consumer_group, parsed.value) == ("engine", "\ufffd{")


def test_a_dead_letter_entry_belongs_to_its_partition_under_a_stable_id() -> None:
    entry = dead_letter_entry(MALFORMED, group="engine", reason="bad", now=T0)
    assert entry == (
        "dlq:milepost.scores:4:17",
        4,
        dead_letter(MALFORMED, group="engine", reason="bad", now=T0),
    )
