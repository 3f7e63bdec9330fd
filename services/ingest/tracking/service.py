"""Turn one Segment call into an :class:`EventEnvelope`, applying Segment's rules.

Pure: no I/O, time comes in as ``received_at``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from services.ingest.errors import ItemRejected, problems_from_validation, rejected
from services.ingest.tracking.schemas import CALL_MODELS, AliasCall, GroupCall, SegmentCall
from shared.contracts import EventEnvelope, EventType
from shared.contracts.events import event_id_for


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
) -> EventEnvelope:
    """One call -> one envelope, or :class:`ItemRejected` naming the field and the rule.

    ``call_type`` is the endpoint's type (``/v1/track``); ``None`` reads it from the item,
    as in a batch.
    """
    if not isinstance(raw, dict):
        raise rejected("", "not_an_object", "each call must be a JSON object")
    size = len(orjson.dumps(raw))
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
        call = model.model_validate({**raw, "type": kind})
    except ValidationError as exc:
        raise ItemRejected(problems_from_validation(exc)) from exc
    return _envelope(call, EventType(kind), workspace_id, defaults)


def _envelope(
    call: SegmentCall, kind: EventType, workspace_id: str, defaults: CallDefaults
) -> EventEnvelope:
    if call.user_id is None and call.anonymous_id is None:
        raise rejected("userId", "missing", "userId or anonymousId is required")
    if isinstance(call, AliasCall) and call.user_id is None:
        raise rejected("userId", "missing", "alias needs the new userId")
    context = {**defaults.context, **call.context}
    account_id = call.group_id if isinstance(call, GroupCall) else _group_of(context)
    sent_at = call.sent_at or defaults.sent_at
    if call.timestamp is None:
        timestamp = defaults.received_at
    elif sent_at is None:
        timestamp = call.timestamp
    else:
        try:
            timestamp = defaults.received_at - (sent_at - call.timestamp)
        except OverflowError as exc:
            raise rejected(
                "timestamp", "out_of_range", "timestamp corrected by sentAt leaves the calendar"
            ) from exc
    message_id = call.message_id or f"milepost-{uuid.uuid4()}"
    if defaults.integrations or call.integrations:
        context["integrations"] = {**defaults.integrations, **call.integrations}
    fields = call.model_dump(include={"event", "name", "properties", "traits", "previous_id"})
    return EventEnvelope(
        event_id=event_id_for(workspace_id, message_id),
        workspace_id=workspace_id,
        message_id=message_id,
        type=kind,
        event=fields.get("event", fields.get("name")),
        account_id=account_id,
        user_id=call.user_id,
        anonymous_id=call.anonymous_id,
        previous_id=fields.get("previous_id"),
        properties=fields.get("properties", {}),
        traits=fields.get("traits", {}),
        context=context,
        timestamp=timestamp,
        original_timestamp=call.timestamp,
        sent_at=sent_at,
        received_at=defaults.received_at,
        source="segment",
    )


def _group_of(context: dict[str, Any]) -> str | None:
    """Segment's B2B spec: the account rides in ``context.groupId`` on non-group calls."""
    group = context.get("groupId")
    if group is None:
        return None
    if isinstance(group, bool) or not isinstance(group, str | int) or not str(group):
        raise rejected("context.groupId", "invalid", "context.groupId must be a string id")
    if len(str(group)) > 256:
        raise rejected("context.groupId", "too_long", "context.groupId is over 256 chars", 256)
    return str(group)
