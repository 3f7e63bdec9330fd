"""Topic names, their key rules and their provisioning defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contracts.events import AccountEvent, EventEnvelope
from shared.contracts.scores import ScoreEnvelope
from shared.contracts.triggers import TriggerEnvelope


class Topic(StrEnum):
    EVENTS = "milepost.events"
    EVENTS_DLQ = "milepost.events.dlq"
    TRIGGERS = "milepost.triggers"
    TRIGGERS_DLQ = "milepost.triggers.dlq"
    SCORES = "milepost.scores"
    SCORES_DLQ = "milepost.scores.dlq"
    ACCOUNT_EVENTS = "milepost.accounts.events"
    DELIVERIES_DLQ = "milepost.deliveries.dlq"


class DeadLetter(BaseModel):
    """A record a consumer could not process, with the reason and where it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    consumer_group: str
    reason: str
    key: str | None = Field(description="The original key, decoded as UTF-8 with replacement.")
    value: str = Field(description="The original value, decoded as UTF-8 with replacement.")
    failed_at: AwareDatetime


class FailedDelivery(BaseModel):
    """A message the messaging service gave up on: a permanent failure (a bounce, a refused
    URL) or a passing one after the last retry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    delivery_id: str = Field(description="The idempotency key every attempt carried.")
    workspace_id: str
    account_id: str
    trigger_id: str
    contact_id: str
    step_id: str
    channel: str
    attempts: int = Field(ge=1)
    reason: str
    failed_at: AwareDatetime


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """How a topic is keyed, what it carries, and how it is provisioned."""

    topic: str
    """A :class:`Topic` name (a plain string only for a namespaced copy)."""
    summary: str
    key_rule: str
    payload: type[BaseModel]
    partitions: int = 12
    retention: timedelta | None = timedelta(days=7)
    cleanup_policy: str = "delete"


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        Topic.EVENTS,
        "Accepted product and CRM events, normalised.",
        "{workspace_id}/a/{account_id}; without an account {workspace_id}/u/{user_id}, "
        "or {workspace_id}/x/{anonymous_id} without a user id",
        EventEnvelope,
    ),
    TopicSpec(
        Topic.EVENTS_DLQ,
        "Events no consumer could process, with the reason.",
        "the original record's key",
        DeadLetter,
        partitions=3,
        retention=timedelta(days=30),
    ),
    TopicSpec(
        Topic.TRIGGERS,
        "Node engine decisions: stage entered, node overdue, tier changed...",
        "{workspace_id}/a/{account_id}",
        TriggerEnvelope,
    ),
    TopicSpec(
        Topic.SCORES,
        "Scoring findings: score changed, risk raised or cleared, tier changed, diagnosis.",
        "{workspace_id}/a/{account_id}",
        ScoreEnvelope,
    ),
    TopicSpec(
        Topic.SCORES_DLQ,
        "Score events no consumer could process, with the reason.",
        "the original record's key",
        DeadLetter,
        partitions=3,
        retention=timedelta(days=30),
    ),
    TopicSpec(
        Topic.ACCOUNT_EVENTS,
        "Accepted events attributed to their account by the attribution stage, each once: "
        "what the engine and scoring read. It has the events topic's partition count.",
        "{workspace_id}/a/{account_id}",
        AccountEvent,
    ),
    TopicSpec(
        Topic.TRIGGERS_DLQ,
        "Triggers no consumer could process, with the reason.",
        "the original record's key",
        DeadLetter,
        partitions=3,
        retention=timedelta(days=30),
    ),
    TopicSpec(
        Topic.DELIVERIES_DLQ,
        "Deliveries the messaging service gave up on, with the reason and attempt count.",
        "{workspace_id}/a/{account_id}",
        FailedDelivery,
        partitions=3,
        retention=timedelta(days=30),
    ),
)
"""Every topic Milepost provisions, with its defaults."""

DLQ_OF: dict[Topic, Topic] = {
    Topic.EVENTS: Topic.EVENTS_DLQ,
    Topic.TRIGGERS: Topic.TRIGGERS_DLQ,
    Topic.SCORES: Topic.SCORES_DLQ,
    Topic.ACCOUNT_EVENTS: Topic.EVENTS_DLQ,
}
