"""CloudEvents 1.0 in structured JSON mode, the way CRM integrations send facts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from shared.contracts.crm import CRM_EVENT_TYPES


class CloudEvent(BaseModel):
    """Required: ``specversion`` 1.0, ``id``, ``source``, ``type``, ``data``. Extension
    attributes (lower-case alphanumeric names) are accepted and kept out of the event."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    source: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    type: str = Field(
        description="One of: " + ", ".join(CRM_EVENT_TYPES),
        json_schema_extra={"enum": list(CRM_EVENT_TYPES)},
    )
    subject: Annotated[str, StringConstraints(max_length=256)] | None = None
    time: AwareDatetime | None = None
    datacontenttype: Literal["application/json"] | None = None
    dataschema: str | None = None
    data: dict[str, Any] = Field(description="The fact, shaped by the type's data model.")


class CloudEventBatch(BaseModel):
    """``application/cloudevents-batch+json``: a JSON array of CloudEvents."""

    model_config = ConfigDict(frozen=True)

    events: list[CloudEvent]
