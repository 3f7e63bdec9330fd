"""The triggers both messaging consumers read from ``milepost.triggers``: decoded once,
with the trace context their record carries (so planning and sending continue the trace
the event started at ingest)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from shared.bus import ConsumedRecord
from shared.consuming.decoding import validation_problems
from shared.contracts import TriggerEnvelope
from shared.errors import InvalidMessage
from shared.observability.tracing import trace_context


@dataclass(frozen=True, slots=True)
class ReceivedTrigger:
    trigger: TriggerEnvelope
    trace: Mapping[str, str]
    """``traceparent`` / ``tracestate`` of the record; empty when tracing was off upstream."""


def decode_trigger(record: ConsumedRecord) -> ReceivedTrigger:
    """The record's trigger; :class:`InvalidMessage` (-> the dead-letter topic) naming the
    first problems when it is not a valid trigger envelope."""
    try:
        trigger = TriggerEnvelope.model_validate_json(record.value)
    except ValidationError as exc:
        raise InvalidMessage(f"not a valid trigger envelope: {validation_problems(exc)}") from exc
    return ReceivedTrigger(trigger, trace_context(record.headers))
