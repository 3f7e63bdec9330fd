"""The subscriptions API's bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.messaging.subscriptions.models import SubscriptionRow
from shared.contracts.triggers import Audience, TriggerKind

MAX_FILTER_VALUES = 50


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kinds: list[TriggerKind] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    paths: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    nodes: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    roles: list[Audience] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)


class SubscriptionIn(FiltersIn):
    url: str = Field(min_length=8, max_length=2048, description="http(s) URL to POST to.")
    description: str | None = Field(default=None, max_length=500)


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=8, max_length=2048)
    description: str | None = Field(default=None, max_length=500)
    active: bool | None = None
    kinds: list[TriggerKind] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    paths: list[str] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    nodes: list[str] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    roles: list[Audience] | None = Field(default=None, max_length=MAX_FILTER_VALUES)


class SubscriptionOut(BaseModel):
    subscription_id: str
    url: str
    description: str | None
    kinds: list[str]
    paths: list[str]
    nodes: list[str]
    roles: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: SubscriptionRow) -> SubscriptionOut:
        return cls.model_validate(row, from_attributes=True)


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(
        description="The Standard Webhooks signing secret (whsec_...). Shown only now."
    )


class SubscriptionPageOut(BaseModel):
    items: list[SubscriptionOut]
    next_cursor: str | None


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(description="Triggers that occurred at or after this time...")
    until: AwareDatetime = Field(description="...and before this one.")

    @model_validator(mode="after")
    def ordered(self) -> ReplayIn:
        if self.until <= self.since:
            raise ValueError("until must be after since")
        return self


class ReplayOut(BaseModel):
    replay_id: str
    queued: int = Field(description="Triggers queued for the subscription.")
