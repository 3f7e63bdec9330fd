"""One message to one recipient on one channel, from planning to its last send. Pure.

The planner makes a :class:`Message` (rendered, with its fate: ``queued``, ``deferred``,
``suppressed`` or ``failed``); the trigger worker settles it against the cooldowns and
budgets; the delivery service stores it (``row_of`` and ``message_of`` in
:mod:`services.messaging.deliveries.repository` map it to and from its row); the dispatcher claims it back with its ``attempt`` and signing
secret and hands it to a channel. The same value all the way: nothing is copied by hand.

(``trigger_id``, ``contact_id``, ``step_id``) is its key, stored once: in its delivery row,
which is also the trigger worker's record of the plan. ``delivery_id`` is derived from it,
so a replayed trigger, a retry and a re-claimed send all carry the same id (the
``Idempotency-Key``, ``webhook-id`` and ``Message-ID`` providers receive).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

MessageStatus = Literal["queued", "deferred", "retrying", "sent", "suppressed", "failed"]
"""Where a message stands; the planner decides one of the first two or the last two."""
MessageKey = tuple[str, str, str]
"""(trigger id, contact id, step id)."""


def delivery_id_of(trigger_id: str, contact_id: str, step_id: str) -> str:
    """The delivery's id, deterministic in its key: the same trigger, contact and step
    always give the same id."""
    digest = hashlib.sha256(f"{trigger_id}\x1f{contact_id}\x1f{step_id}".encode()).hexdigest()
    return f"dlv_{digest[:32]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One message for one contact of one trigger's step.

    ``target`` is what the channel needs: ``{"email", "name"}`` for email, ``{"url"}`` for a
    webhook, ``{"user_id"}`` (and optionally ``{"url"}``) for chat apps and the in-app feed.
    ``queued`` and ``deferred`` are sent at ``not_before`` (UTC); ``suppressed`` (a policy
    said no) and ``failed`` (it could not be made, e.g. a template error) at planning are
    only recorded, with their ``reason``; ``retrying``, ``sent`` and ``failed`` are what
    became of a send. A higher ``priority`` is sent first when several are due.
    """

    workspace_id: str
    account_id: str
    trigger_id: str
    contact_id: str
    step_id: str
    """``playbook/step`` for a playbook's message: unique across playbooks."""
    channel: str | None
    """One of ``services.messaging.settings.CHANNELS``; ``None``: no channel reaches the
    contact (the message is suppressed)."""
    target: Mapping[str, str]
    subject: str
    body: str
    category: str
    priority: int
    """The send order (``PRIORITY_RANK`` of a playbook step's priority)."""
    planned_at: datetime
    """When it was planned: the same on every attempt, so what is sent (a webhook's body)
    is too."""
    not_before: datetime
    status: MessageStatus = "queued"
    reason: str | None = None
    playbook_id: str | None = None
    playbook_version: int | None = None
    role: str | None = None
    """The role the trigger worker reached the contact through (the budgets count per
    role); ``None``: not its plan (a subscription's delivery, a task push, a follow-up)."""
    locale: str | None = None
    """The locale the message was rendered in."""
    cooldown: timedelta | None = None
    """The step's cooldown per account (none: every trigger may plan it)."""
    trace: Mapping[str, str] = field(default_factory=dict)
    """The trace context the send continues (``traceparent``...); empty: a new trace."""
    attempt: int = 0
    """The send attempt this is (0: not sent yet)."""
    signing_secret: str | None = None
    """The Standard Webhooks secret (``whsec_``...) for the webhook channel."""
    delivery_id: str = ""
    """Derived from the key when not given (see the module docstring)."""

    def __post_init__(self) -> None:
        if not self.delivery_id:
            derived = delivery_id_of(self.trigger_id, self.contact_id, self.step_id)
            object.__setattr__(self, "delivery_id", derived)

    @property
    def key(self) -> MessageKey:
        return (self.trigger_id, self.contact_id, self.step_id)

    @property
    def due_at_once(self) -> bool:
        """Whether it is planned to go out at once (queued, not deferred)."""
        return self.status == "queued" and self.not_before <= self.planned_at
