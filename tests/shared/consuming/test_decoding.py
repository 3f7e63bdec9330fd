"""A payload that does not validate is refused with its first problems, field by field."""

from __future__ import annotations

import pytest

from shared.bus import ConsumedRecord
from shared.consuming.decoding import decode_json
from shared.contracts import ScoreEnvelope, TriggerEnvelope
from shared.errors import InvalidMessage


def record(value: bytes) -> ConsumedRecord:
    return ConsumedRecord("milepost.triggers", 0, 3, None, value, (), 0)


def test_a_payload_that_does_not_validate_names_its_problems() -> None:
    with pytest.raises(InvalidMessage, match=r"^not a valid trigger envelope: schema_version: "):
        decode_json(TriggerEnvelope, record(b'{"schema_version": "x"}'), name="trigger envelope")
    with pytest.raises(InvalidMessage, match=r"^not a valid score envelope: record: Invalid JSON"):
        decode_json(ScoreEnvelope, record(b"\xff{"), name="score envelope")
