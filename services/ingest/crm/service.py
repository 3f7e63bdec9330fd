"""Turn one CloudEvent carrying a CRM fact into an :class:`EventEnvelope`. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import orjson
from pydantic import ValidationError

from services.ingest.crm.schemas import CloudEvent
from services.ingest.errors import ItemRejected, problems_from_validation, rejected
from services.ingest.publishing import PreparedEvent
from shared.contracts import CRM_EVENT_TYPES, EventEnvelope, EventType
from shared.contracts.crm import ContactUpserted, TicketOpened
from shared.contracts.events import event_id_for

BINARY_PREFIX = "ce-"
"""Binary mode: each attribute is an HTTP header ``ce-<name>``; the body is the data."""


def binary_cloud_event(headers: Mapping[str, str], data: Any) -> dict[str, Any]:
    """A binary-mode CloudEvent in its structured form: every ``ce-`` header (lower-case
    name, percent-decoded value, as the HTTP binding encodes it) an attribute, the body
    its ``data``."""
    attributes = {
        name.lower().removeprefix(BINARY_PREFIX): unquote(value)
        for name, value in headers.items()
        if name.lower().startswith(BINARY_PREFIX)
    }
    return {**attributes, "data": data}


def normalise_cloud_event(
    raw: Any, *, workspace_id: str, received_at: datetime, max_event_bytes: int
) -> PreparedEvent:
    return PreparedEvent.of(
        cloud_event_envelope(
            raw,
            workspace_id=workspace_id,
            received_at=received_at,
            max_event_bytes=max_event_bytes,
        )
    )


def cloud_event_envelope(
    raw: Any, *, workspace_id: str, received_at: datetime, max_event_bytes: int
) -> EventEnvelope:
    """One CloudEvent -> its envelope, or :class:`ItemRejected` naming the field and rule."""
    if not isinstance(raw, dict):
        raise rejected("", "not_an_object", "each CloudEvent must be a JSON object")
    size = len(orjson.dumps(raw))
    if size > max_event_bytes:
        raise rejected(
            "", "too_large", f"event is {size} bytes, over {max_event_bytes}", max_event_bytes
        )
    try:
        cloud_event = CloudEvent.model_validate(raw)
    except ValidationError as exc:
        raise ItemRejected(problems_from_validation(exc)) from exc
    model = CRM_EVENT_TYPES.get(cloud_event.type)
    if model is None:
        raise rejected("type", "invalid", f"type must be one of {', '.join(CRM_EVENT_TYPES)}")
    try:
        fact = model.model_validate(cloud_event.data)
    except ValidationError as exc:
        raise ItemRejected(problems_from_validation(exc, prefix="data")) from exc
    person = fact.contact_id if isinstance(fact, ContactUpserted | TicketOpened) else None
    message_id = f"{cloud_event.source}#{cloud_event.id}"
    return EventEnvelope(
        event_id=event_id_for(workspace_id, message_id),
        workspace_id=workspace_id,
        message_id=message_id,
        type=EventType.CRM,
        event=cloud_event.type,
        account_id=fact.account_id,
        user_id=person,
        properties=fact.model_dump(mode="json"),
        context={
            "cloudevent": {"subject": cloud_event.subject, "dataschema": cloud_event.dataschema}
        },
        timestamp=cloud_event.time or received_at,
        original_timestamp=cloud_event.time,
        received_at=received_at,
        source=f"crm:{cloud_event.source}",
    )
