"""The triggers both messaging consumers read from ``milepost.triggers``: decoded once, into
a frozen msgspec struct (no pydantic on the hot path), with the trace context their record
carries (so planning and sending continue the trace the event started at ingest)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.bus import ConsumedRecord
from shared.consuming.decoding import RecordDecoder
from shared.contracts.triggers import TriggerEnvelope, TriggerRecord
from shared.observability.tracing import trace_context

read_trigger = RecordDecoder(TriggerRecord, TriggerEnvelope, name="trigger envelope")


@dataclass(frozen=True, slots=True)
class ReceivedTrigger:
    trigger: TriggerRecord
    trace: Mapping[str, str]
    """``traceparent`` / ``tracestate`` of the record; empty when tracing was off upstream."""


def decode_trigger(record: ConsumedRecord) -> ReceivedTrigger:
    """The record's trigger; :class:`~shared.errors.InvalidMessage` (-> the dead-letter
    topic) naming the first problems, as the envelope's model states them, when it is not a
    valid trigger envelope."""
    return ReceivedTrigger(read_trigger(record), trace_context(record.headers))


def trigger_from_json(value: str | bytes) -> TriggerRecord:
    """A trigger from JSON Milepost wrote itself (a remembered envelope, a simulated
    trigger's); raises :class:`msgspec.ValidationError` when it is not one."""
    return read_trigger.decoder.decode(value)
