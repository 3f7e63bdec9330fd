"""The event envelope on ``milepost.events``: one normalised record per accepted event,
and the same event attributed to its account on ``milepost.accounts.events``.

Ingest builds the envelope from Segment-style calls and CRM CloudEvents; the attribution
stage (:mod:`shared.attribution`) reads it and publishes an :class:`AccountEvent` for each
event it can place in an account. ``event_id`` is deterministic (workspace + message id),
so a replayed or re-sent event has the same id and consumers can make their effects
idempotent with it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.crm import ContactRole


class EventType(StrEnum):
    """The kind of call that produced the event (Segment's spec, plus CRM facts)."""

    TRACK = "track"
    IDENTIFY = "identify"
    GROUP = "group"
    PAGE = "page"
    SCREEN = "screen"
    ALIAS = "alias"
    CRM = "crm"


class EventEnvelope(BaseModel):
    """One accepted event, as published on ``milepost.events``.

    Key rule: ``{workspace_id}/a/{account_id}`` when the account is known, else
    ``{workspace_id}/u/{user_id}`` (or ``/x/{anonymous_id}``): one account's events share a
    partition and keep their order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    event_id: str = Field(description="Deterministic id: hash of workspace and message id.")
    workspace_id: str
    message_id: str = Field(description="The sender's messageId, the deduplication key.")
    type: EventType
    event: str | None = Field(
        default=None,
        description="Track event name, page/screen name, or the CRM CloudEvent type.",
    )
    account_id: str | None = Field(
        default=None, description="The B: groupId on group calls, context.groupId otherwise."
    )
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = Field(default=None, description="On alias calls: the old id.")
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    timestamp: AwareDatetime = Field(
        description="When it happened, corrected for client clock skew."
    )
    original_timestamp: AwareDatetime | None = Field(
        default=None, description="The timestamp as the client sent it."
    )
    sent_at: AwareDatetime | None = None
    received_at: AwareDatetime
    source: str = Field(description="'segment' for the tracking API, 'crm:<source>' for CRM.")

    @property
    def key(self) -> str:
        return event_key(self.workspace_id, self.account_id, self.user_id, self.anonymous_id)


class AccountEvent(EventEnvelope):
    """An event attributed to its account, as published on ``milepost.accounts.events``:
    the accepted event with ``account_id`` set (the user's account when the event named
    none) and what attribution knew of its user there.

    Key rule: ``{workspace_id}/a/{account_id}``: every event of an account, whether it named
    the account or only its user, shares one partition and keeps its order.
    """

    account_id: str = Field(
        description="The account: the event's own, else the one its user joined."
    )
    actor_roles: list[ContactRole] = Field(
        default_factory=list, description="The acting user's roles in the account."
    )
    joined: bool = Field(
        default=False,
        description="Whether the event stated the user's membership of the account (a group "
        "call, an identify call naming the account, a CRM contact); its roles are then "
        "actor_roles.",
    )


Aware = Annotated[datetime, msgspec.Meta(tz=True)]
"""A timezone-aware datetime, as a record struct reads it (pydantic's ``AwareDatetime``)."""


class EventRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An :class:`EventEnvelope` as its consumers read it: a frozen, slotted struct that
    msgspec decodes without pydantic. The same fields, types, limits and defaults as the
    envelope, which stays the one schema (``tests/shared/contracts/test_records.py``
    compares them)."""

    schema_version: Literal[1] = 1
    event_id: str
    workspace_id: str
    message_id: str
    type: EventType
    event: str | None = None
    account_id: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    previous_id: str | None = None
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    context: dict[str, Any] = {}
    timestamp: Aware
    original_timestamp: Aware | None = None
    sent_at: Aware | None = None
    received_at: Aware
    source: str

    @property
    def key(self) -> str:
        return event_key(self.workspace_id, self.account_id, self.user_id, self.anonymous_id)


class AccountEventRecord(EventRecord, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An :class:`AccountEvent` as the engine and scoring read it: an :class:`EventRecord`
    whose ``account_id`` is set, with the acting user's roles (compared with its model like
    the others)."""

    account_id: str
    actor_roles: list[ContactRole] = []
    joined: bool = False


AnyEvent = EventEnvelope | EventRecord
"""An event as ingest builds it or as a consumer reads it."""


def event_key(
    workspace_id: str, account_id: str | None, user_id: str | None, anonymous_id: str | None
) -> str:
    """The Kafka key of an event: the account when known, else the person."""
    if account_id:
        return f"{workspace_id}/a/{account_id}"
    if user_id:
        return f"{workspace_id}/u/{user_id}"
    return f"{workspace_id}/x/{anonymous_id or ''}"


def event_id_for(workspace_id: str, message_id: str) -> str:
    """Deterministic event id: the same message id in a workspace always maps to it."""
    digest = hashlib.blake2b(f"{workspace_id}\x00{message_id}".encode(), digest_size=16)
    return digest.hexdigest()
