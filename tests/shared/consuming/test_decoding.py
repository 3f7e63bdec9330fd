"""A payload that does not validate is refused with its first problems, field by field."""

from __future__ import annotations

import pytest

from shared.bus import ConsumedRecord
from shared.consuming.decoding import RecordDecoder
from shared.contracts import ScoreEnvelope, TriggerEnvelope
from shared.contracts.scores import ScoreRecord
from shared.contracts.triggers import TriggerRecord
from shared.errors import InvalidMessage


def record(value: bytes) -> ConsumedRecord:
    return ConsumedRecord("milepost.triggers", 0, 3, None, value, (), 0)


read_trigger = RecordDecoder(TriggerRecord, TriggerEnvelope, name="trigger envelope")
read_score = RecordDecoder(ScoreRecord, ScoreEnvelope, name="score envelope")


def test_a_payload_that_does_not_validate_names_its_problems() -> None:
    with pytest.raises(InvalidMessage, match=r"^not a valid trigger envelope: schema_version: "):
        read_trigger(record(b'{"schema_version": "x"}'))
    with pytest.raises(InvalidMessage, match=r"^not a valid score envelope: record: Invalid JSON"):
        read_score(record(b"\xff{"))
