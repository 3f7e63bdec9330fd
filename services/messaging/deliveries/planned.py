"""What the trigger worker hands to the delivery service: one message, already rendered."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

PlannedStatus = Literal["queued", "deferred", "suppressed", "failed"]


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    """One message for one contact of one trigger's step.

    ``target`` is what the channel needs: ``{"email", "name"}`` for email, ``{"url"}`` for a
    webhook, ``{"user_id"}`` (and optionally ``{"url"}``) for chat apps and the in-app feed.
    ``status`` ``queued`` or ``deferred`` is sent at ``not_before`` (UTC); ``suppressed``
    (a policy said no) and ``failed`` (it could not be made, e.g. a template error) are only
    recorded, with their ``reason``. Higher ``priority`` is sent first when several
    are due. (``trigger_id``, ``contact_id``, ``step_id``) is the deduplication key.
    """

    workspace_id: str
    account_id: str
    trigger_id: str
    playbook_id: str | None
    playbook_version: int | None
    step_id: str
    contact_id: str
    channel: str
    """One of ``services.messaging.settings.CHANNELS``."""
    target: Mapping[str, str]
    subject: str
    body: str
    category: str
    priority: int
    planned_at: datetime
    not_before: datetime
    status: PlannedStatus = "queued"
    reason: str | None = None
    trace: Mapping[str, str] = field(default_factory=dict)
    """The trace context the send continues (``traceparent``...); empty: none."""
