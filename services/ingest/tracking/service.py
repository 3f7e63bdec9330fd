"""Turn one Segment call into an :class:`~shared.contracts.EventEnvelope`, applying
Segment's rules.

Pure: no I/O, time comes in as ``received_at``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from pydantic import ValidationError

from services.ingest.errors import ItemRejected, problems_from_validation, rejected
from services.ingest.publishing import PreparedEvent
from services.ingest.tracking.schemas import (
    CALL_MODELS,
    AliasCall,
    GroupCall,
    IdentifyCall,
    PageCall,
    ScreenCall,
    SegmentCall,
    TrackCall,
)
from shared.contracts.events import event_id_for, event_key


@dataclass(frozen=True, slots=True)
class CallDefaults:
    """What a batch (or the request itself) contributes to each of its calls."""

    received_at: datetime
    context: dict[str, Any]
    integrations: dict[str, Any]
    sent_at: datetime | None
    max_event_bytes: int


def normalise_call(
    raw: Any, *, workspace_id: str, call_type: str | None, defaults: CallDefaults
) -> PreparedEvent:
    """One call -> one serialised envelope, or :class:`ItemRejected` naming the field and
    the rule.

    ``call_type`` is the endpoint's type (``/v1/track``); ``None`` reads it from the item,
    as in a batch.
    """
    if not isinstance(raw, dict):
        raise rejected("", "not_an_object", "each call must be a JSON object")
    try:
        size = len(orjson.dumps(raw))
    except orjson.JSONEncodeError as exc:  # nests past what JSON serialisation supports
        raise rejected("", "too_deep", "the call nests too deeply to be serialised") from exc
    if size > defaults.max_event_bytes:
        raise rejected(
            "",
            "too_large",
            f"event is {size} bytes, over the {defaults.max_event_bytes} byte limit",
            defaults.max_event_bytes,
        )
    kind = call_type or raw.get("type")
    if kind is None:
        raise rejected("type", "missing", "every call needs a type")
    model = CALL_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise rejected("type", "invalid", f"type must be one of {', '.join(CALL_MODELS)}")
    try:
        call = model.model_validate(raw if raw.get("type") == kind else {**raw, "type": kind})
    except ValidationError as exc:
        raise ItemRejected(problems_from_validation(exc)) from exc
    return _prepare(call, kind, workspace_id, defaults)


def _prepare(
    call: SegmentCall, kind: str, workspace_id: str, defaults: CallDefaults
) -> PreparedEvent:
    """The :class:`EventEnvelope` of a validated call, serialised as its ``model_dump_json``
    would be but without validating the envelope a second time: every field comes from
    the validated call, the defaults or the rules here."""
    # ``kind`` names the model the call was validated with: dispatching on it is much
    # cheaper than isinstance on pydantic models (whose metaclass is an ABCMeta).
    if call.user_id is None and call.anonymous_id is None:
        raise rejected("userId", "missing", "userId or anonymousId is required")
    if kind == "alias" and call.user_id is None:
        raise rejected("userId", "missing", "alias needs the new userId")
    context = {**defaults.context, **call.context}
    account_id = cast(GroupCall, call).group_id if kind == "group" else _group_of(context)
    sent_at = call.sent_at or defaults.sent_at
    timestamp = _timestamp(call, sent_at, defaults.received_at)
    message_id = call.message_id or f"milepost-{uuid.uuid4()}"
    if defaults.integrations or call.integrations:
        context["integrations"] = {**defaults.integrations, **call.integrations}
    event, properties, traits, previous_id = _particulars(call, kind, context)
    # The fields of EventEnvelope, in its order (tests/services/ingest check the two agree).
    envelope = {
        "schema_version": 1,
        "event_id": event_id_for(workspace_id, message_id),
        "workspace_id": workspace_id,
        "message_id": message_id,
        "type": kind,
        "event": event,
        "account_id": account_id,
        "user_id": call.user_id,
        "anonymous_id": call.anonymous_id,
        "previous_id": previous_id,
        "properties": properties,
        "traits": traits,
        "context": context,
        "timestamp": timestamp,
        "original_timestamp": call.timestamp,
        "sent_at": sent_at,
        "received_at": defaults.received_at,
        "source": "segment",
    }
    try:
        value = orjson.dumps(envelope, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError as exc:
        raise rejected("", "too_deep", "the call nests too deeply to be serialised") from exc
    key = event_key(workspace_id, account_id, call.user_id, call.anonymous_id)
    return PreparedEvent(message_id, key.encode(), value)


def _timestamp(call: SegmentCall, sent_at: datetime | None, received_at: datetime) -> datetime:
    """When the call happened: its ``timestamp`` corrected by the sender's clock skew
    (``receivedAt - (sentAt - timestamp)``), else the time it was received."""
    if call.timestamp is None:
        return received_at
    if sent_at is None:
        return call.timestamp
    try:
        return received_at - (sent_at - call.timestamp)
    except OverflowError as exc:
        raise rejected(
            "timestamp", "out_of_range", "timestamp corrected by sentAt leaves the calendar"
        ) from exc


def _particulars(
    call: SegmentCall, kind: str, context: dict[str, Any]
) -> tuple[str | None, dict[str, Any], dict[str, Any], str | None]:
    """What the call's kind carries: its event name, properties, traits and previous id."""
    if kind == "track":
        track = cast(TrackCall, call)
        return track.event, track.properties, {}, None
    if kind == "page" or kind == "screen":
        page = cast(PageCall | ScreenCall, call)
        return page.name, page.properties, {}, None
    if kind == "identify":
        return None, {}, _user_traits(context, cast(IdentifyCall, call).traits), None
    if kind == "group":
        return None, {}, cast(GroupCall, call).traits, None
    if kind == "alias":
        return None, {}, {}, cast(AliasCall, call).previous_id
    return None, {}, {}, None


def _user_traits(context: dict[str, Any], traits: dict[str, Any]) -> dict[str, Any]:
    """An identify call's traits: RudderStack's SDKs put them only in ``context.traits``
    (Segment's at the top); both are read, the top-level ones winning on conflict."""
    nested = context.get("traits")
    return {**nested, **traits} if isinstance(nested, dict) and nested else traits


def _group_of(context: dict[str, Any]) -> str | None:
    """Segment's B2B spec: the account rides in ``context.groupId`` on non-group calls."""
    group = context.get("groupId")
    if group is None:
        return None
    if type(group) is str and 0 < len(group) <= 256:  # the usual case, checked cheaply
        return group
    if isinstance(group, bool) or not isinstance(group, (str, int)) or not str(group):
        raise rejected("context.groupId", "invalid", "context.groupId must be a string id")
    if len(str(group)) > 256:
        raise rejected("context.groupId", "too_long", "context.groupId is over 256 chars", 256)
    return str(group)
