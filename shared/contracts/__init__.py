"""Wire contracts: the records that flow on Milepost's topics, their keys and schemas."""

from shared.contracts.crm import CRM_EVENT_TYPES, ContactRole
from shared.contracts.events import AccountEvent, EventEnvelope, EventType
from shared.contracts.scores import RiskLevel, ScoreEnvelope, ScoreKind, SignalReason
from shared.contracts.topics import TOPICS, Topic, TopicSpec
from shared.contracts.triggers import Audience, TriggerEnvelope, TriggerKind

__all__ = [
    "CRM_EVENT_TYPES",
    "TOPICS",
    "AccountEvent",
    "Audience",
    "ContactRole",
    "EventEnvelope",
    "EventType",
    "RiskLevel",
    "ScoreEnvelope",
    "ScoreKind",
    "SignalReason",
    "Topic",
    "TopicSpec",
    "TriggerEnvelope",
    "TriggerKind",
]
