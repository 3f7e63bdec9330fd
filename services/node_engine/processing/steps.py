"""The consumer's small steps, each testable alone: decode a record, build the outgoing
trigger. Pure."""

from __future__ import annotations

import msgspec
import orjson

from services.node_engine.core.state import AccountState, ScoreUpdate, Transition
from services.node_engine.core.triggers import trigger_fields
from shared.bus import ConsumedRecord, OutgoingRecord
from shared.consuming.decoding import RecordDecoder
from shared.consuming.seen import Sighting
from shared.contracts import AccountEvent, ScoreEnvelope, Topic
from shared.contracts.events import AccountEventRecord
from shared.contracts.scores import ScoreRecord
from shared.observability.tracing import Headers


class Decoded(msgspec.Struct, frozen=True, gc=False):
    """A consumed record with its payload, one of an event or a score (a struct: one is
    built per record)."""

    record: ConsumedRecord
    event: AccountEventRecord | None = None
    score: ScoreRecord | None = None


read_event = RecordDecoder(AccountEventRecord, AccountEvent, name="account event")
read_score = RecordDecoder(ScoreRecord, ScoreEnvelope, name="score envelope")


def decode(record: ConsumedRecord) -> Decoded:
    """Parse a record of an input topic; :class:`InvalidMessage` (to the DLQ) when it is
    not a valid envelope of its topic."""
    if record.topic == Topic.SCORES:
        return Decoded(record, score=read_score(record))
    return Decoded(record, event=read_event(record))


def sighting_of(item: Decoded) -> Sighting | None:
    """What deduplicates an event: its id at the topic it came in on; ``None`` for a
    score."""
    return None if item.event is None else Sighting.of(item.record, item.event.event_id)


def score_update(score: ScoreRecord) -> ScoreUpdate:
    values: dict[str, object] = {"signals": list(score.signals), "last_kind": score.kind.value}
    if score.health is not None:
        values["health"] = score.health
    if score.risk_level is not None:
        values["risk_level"] = score.risk_level.value
    if score.tier is not None:
        values["tier"] = score.tier
    return ScoreUpdate(
        score.score_event_id,
        score.kind.value,
        values,
        int(score.occurred_at.timestamp()),
        tuple(msgspec.to_builtins(reason) for reason in score.reasons),
    )


def trigger_record(
    state: AccountState, transition: Transition, trace: Headers = ()
) -> OutgoingRecord:
    """The ``milepost.triggers`` record of a published transition: a
    :class:`TriggerEnvelope`, serialised straight from trusted values (its schema is the
    contract; the tests parse every record back with it), carrying the trace context
    ``trace``."""
    envelope = trigger_fields(state, transition)
    key = f"{state.workspace_id}/a/{state.account_id}".encode()
    return OutgoingRecord(
        Topic.TRIGGERS, key, orjson.dumps(envelope, option=orjson.OPT_UTC_Z), trace
    )
