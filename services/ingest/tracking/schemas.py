"""The Segment HTTP Tracking API's calls, as Segment and RudderStack SDKs send them.

Unknown top-level fields are ignored (SDKs add their own, e.g. ``_metadata``, ``channel``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic.alias_generators import to_camel


def _number_to_text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _assume_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


Identifier = Annotated[
    str, BeforeValidator(_number_to_text), StringConstraints(min_length=1, max_length=256)
]
Timestamp = Annotated[datetime, AfterValidator(_assume_utc)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class SegmentCall(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )

    user_id: Identifier | None = None
    anonymous_id: Identifier | None = None
    message_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    timestamp: Timestamp | None = None
    sent_at: Timestamp | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)


class TrackCall(SegmentCall):
    type: Literal["track"] = "track"
    event: Name
    properties: dict[str, Any] = Field(default_factory=dict)


class IdentifyCall(SegmentCall):
    type: Literal["identify"] = "identify"
    traits: dict[str, Any] = Field(default_factory=dict)


class GroupCall(SegmentCall):
    type: Literal["group"] = "group"
    group_id: Identifier
    traits: dict[str, Any] = Field(default_factory=dict)


class PageCall(SegmentCall):
    type: Literal["page"] = "page"
    name: Name | None = None
    category: Name | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class ScreenCall(SegmentCall):
    type: Literal["screen"] = "screen"
    name: Name | None = None
    category: Name | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class AliasCall(SegmentCall):
    type: Literal["alias"] = "alias"
    previous_id: Identifier


AnyCall = Annotated[
    TrackCall | IdentifyCall | GroupCall | PageCall | ScreenCall | AliasCall,
    Field(discriminator="type"),
]

CALL_MODELS: dict[str, type[SegmentCall]] = {
    "track": TrackCall,
    "identify": IdentifyCall,
    "group": GroupCall,
    "page": PageCall,
    "screen": ScreenCall,
    "alias": AliasCall,
}


class BatchRequest(BaseModel):
    """``POST /v1/batch``. ``context`` and ``integrations`` apply to every item."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    batch: list[AnyCall] = Field(description="Up to 2,500 calls, 500 KB in all by default.")
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)
    sent_at: Timestamp | None = None
    write_key: str | None = Field(default=None, description="Instead of HTTP Basic auth.")
