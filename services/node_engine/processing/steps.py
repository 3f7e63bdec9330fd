"""The consumer's small steps, each testable alone: decode a record, build the outgoing
trigger and re-keyed event. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from services.node_engine.core.state import AccountState, ScoreUpdate, Transition
from shared.bus import ConsumedRecord, OutgoingRecord
from shared.consuming.decoding import decode_json
from shared.consuming.seen import Sighting
from shared.contracts import EventEnvelope, ScoreEnvelope, Topic
from shared.errors import InvalidMessage
from shared.observability.tracing import Headers


@dataclass(frozen=True, slots=True)
class Decoded:
    record: ConsumedRecord
    event: EventEnvelope | None = None
    score: ScoreEnvelope | None = None


def decode(record: ConsumedRecord) -> Decoded:
    """Parse a record of an input topic; :class:`InvalidMessage` (to the DLQ) when it is
    not a valid envelope of its topic."""
    if record.topic == Topic.SCORES:
        return Decoded(record, score=decode_json(ScoreEnvelope, record, name="score envelope"))
    event = decode_json(EventEnvelope, record, name="event envelope")
    if record.topic == Topic.ENGINE_REKEYED and event.account_id is None:
        raise InvalidMessage("a re-keyed event must carry its account_id")
    return Decoded(record, event=event)


def sighting_of(item: Decoded) -> Sighting | None:
    """What deduplicates an event: its id at the topic it came in on (an event and its
    re-keyed copy are two stages); ``None`` for a score."""
    return None if item.event is None else Sighting.of(item.record, item.event.event_id)


def score_update(score: ScoreEnvelope) -> ScoreUpdate:
    values: dict[str, object] = {"signals": list(score.signals), "last_kind": score.kind.value}
    if score.health is not None:
        values["health"] = score.health
    if score.risk_level is not None:
        values["risk_level"] = score.risk_level.value
    if score.tier is not None:
        values["tier"] = score.tier
    return ScoreUpdate(
        score.score_event_id, score.kind.value, values, int(score.occurred_at.timestamp())
    )


def trigger_record(
    state: AccountState, transition: Transition, trace: Headers = ()
) -> OutgoingRecord:
    """The ``milepost.triggers`` record of a published transition: a
    :class:`TriggerEnvelope`, serialised straight from trusted values (its schema is the
    contract; the tests parse every record back with it), carrying the trace context
    ``trace``."""
    kind = transition.trigger_kind
    assert kind is not None
    cause = transition.cause_id
    envelope = {
        "schema_version": 1,
        "trigger_id": transition.id,
        "workspace_id": state.workspace_id,
        "account_id": state.account_id,
        "path_id": state.path_id,
        "path_version": state.path_version,
        "stage": transition.stage,
        "node": transition.node,
        "kind": kind.value,
        "target_roles": list(transition.target_roles),
        "reason": transition.reason,
        "causing_event_id": None if cause.startswith(("timer:", "move:")) else cause,
        "occurred_at": datetime.fromtimestamp(transition.occurred_at, UTC),
        "payload": transition.payload,
    }
    key = f"{state.workspace_id}/a/{state.account_id}".encode()
    return OutgoingRecord(
        Topic.TRIGGERS, key, orjson.dumps(envelope, option=orjson.OPT_UTC_Z), trace
    )


SOURCE_HEADER = "milepost-source"
"""On a re-keyed event: ``topic:partition:offset`` of the record it came from."""


def rekeyed_record(
    event: EventEnvelope, account_id: str, source: ConsumedRecord, trace: Headers = ()
) -> OutgoingRecord:
    """The event again, attributed to ``account_id`` and keyed by it, naming its source so
    a copy published twice (after a crash) is applied once, and carrying ``trace``."""
    attributed = event.model_copy(update={"account_id": account_id})
    origin = f"{source.topic}:{source.partition}:{source.offset}".encode()
    return OutgoingRecord(
        Topic.ENGINE_REKEYED,
        attributed.key.encode(),
        attributed.model_dump_json().encode(),
        ((SOURCE_HEADER, origin), *trace),
    )


def source_of(record: ConsumedRecord) -> tuple[str, int] | None:
    """A re-keyed record's source as (``topic:partition``, offset); ``None`` without one."""
    for name, value in record.headers:
        if name == SOURCE_HEADER:
            origin, _, offset = value.decode("utf-8", "replace").rpartition(":")
            if origin and offset.isdigit():
                return origin, int(offset)
    return None
