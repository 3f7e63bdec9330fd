"""A trigger record decodes, without pydantic, to the values the envelope's model reads, with
its trace; a record the model refuses is refused with the model's own reasons."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from pydantic import ValidationError

from services.messaging.processing.received import decode_trigger, trigger_from_json
from shared.bus import ConsumedRecord
from shared.consuming.decoding import validation_problems
from shared.contracts import TriggerEnvelope
from shared.contracts.triggers import TriggerRecord
from shared.errors import InvalidMessage
from tests.services.messaging.support import RISK_AT, risk_payload, trigger_envelope

TRACE = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
RISK = trigger_envelope(
    "risk_changed",
    node=None,
    roles=("decision_maker", "account_owner"),
    at=RISK_AT,
    payload=risk_payload("A large data export: 数据导出"),
)


def record(value: bytes, headers: tuple[tuple[str, bytes], ...] = ()) -> ConsumedRecord:
    return ConsumedRecord("milepost.triggers", 0, 7, b"ws_test/a/acme", value, headers, 0)


def test_a_trigger_decodes_to_the_values_its_envelope_reads_with_its_trace() -> None:
    value = RISK.model_dump_json().encode()
    headers = tuple((name, text.encode()) for name, text in TRACE.items())
    received = decode_trigger(record(value, (*headers, ("other", b"x"))))
    assert isinstance(received.trigger, TriggerRecord)
    assert received.trace == TRACE
    model = TriggerEnvelope.model_validate_json(value)
    assert {name: getattr(received.trigger, name) for name in TriggerEnvelope.model_fields} == dict(
        model
    )
    assert received.trigger.key == model.key
    assert msgspec.to_builtins(received.trigger) == model.model_dump(mode="json")
    assert msgspec.json.encode(received.trigger) == value
    assert trigger_from_json(value) == received.trigger


def broken(**changes: Any) -> bytes:
    written = {**RISK.model_dump(mode="json"), **changes}
    return json.dumps({k: v for k, v in written.items() if v is not None}).encode()


@pytest.mark.parametrize(
    "value",
    [
        b'{"kind": "node_overdue"}',
        b"not json",
        b"[]",
        broken(path_version=0),
        broken(kind="node_skipped"),
        broken(target_roles=["admin", "owner"]),
        broken(occurred_at="2026-03-02T09:30:12"),
        broken(schema_version=2),
        broken(extra="field"),
        broken(payload=[1]),
    ],
)
def test_a_record_the_model_refuses_is_refused_with_the_models_reasons(value: bytes) -> None:
    with pytest.raises(ValidationError) as refused:
        TriggerEnvelope.model_validate_json(value)
    reason = f"not a valid trigger envelope: {validation_problems(refused.value)}"
    with pytest.raises(InvalidMessage) as exc:
        decode_trigger(record(value))
    assert str(exc.value) == reason
