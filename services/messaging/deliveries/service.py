"""Queueing planned deliveries, once each."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.deliveries import repository
from services.messaging.deliveries.cursors import decode_cursor, encode_cursor
from services.messaging.deliveries.models import DeliveryRow
from services.messaging.deliveries.planned import PlannedDelivery

QueuedStatus = Literal["queued", "deferred", "suppressed", "duplicate"]


def delivery_id_of(trigger_id: str, contact_id: str, step_id: str) -> str:
    """The delivery's id, deterministic in its key: the same trigger, contact and step
    always give the same id (the ``webhook-id`` and idempotency key sent to providers)."""
    digest = hashlib.sha256(f"{trigger_id}\x1f{contact_id}\x1f{step_id}".encode()).hexdigest()
    return f"dlv_{digest[:32]}"


@dataclass(frozen=True, slots=True)
class QueuedOutcome:
    """What :func:`queue_delivery` did: ``duplicate`` when the key was already queued
    (nothing written), otherwise the status recorded."""

    delivery_id: str
    status: QueuedStatus


async def queue_delivery(session: AsyncSession, planned: PlannedDelivery) -> QueuedOutcome:
    """Record ``planned`` and its attempt 0; queued and deferred ones become due at
    ``not_before``, suppressed ones are kept with their reason and never sent.

    Idempotent on (``trigger_id``, ``contact_id``, ``step_id``): a replayed trigger queues
    nothing twice. Flushes only; the caller's transaction commits.
    """
    delivery_id = delivery_id_of(planned.trigger_id, planned.contact_id, planned.step_id)
    if await repository.existing_ids(session, [delivery_id]):
        return QueuedOutcome(delivery_id, "duplicate")
    suppressed = planned.status == "suppressed"
    await repository.insert_delivery(
        session,
        {
            "delivery_id": delivery_id,
            "workspace_id": planned.workspace_id,
            "account_id": planned.account_id,
            "trigger_id": planned.trigger_id,
            "contact_id": planned.contact_id,
            "step_id": planned.step_id,
            "playbook_id": planned.playbook_id,
            "playbook_version": planned.playbook_version,
            "channel": planned.channel,
            "target": dict(planned.target),
            "subject": planned.subject,
            "body": planned.body,
            "category": planned.category,
            "priority": planned.priority,
            "status": planned.status,
            "reason": planned.reason,
            "attempts": 0,
            "provider_message_id": None,
            "planned_at": planned.planned_at,
            "not_before": planned.not_before,
            "due_at": None if suppressed else planned.not_before,
            "finished_at": planned.planned_at if suppressed else None,
        },
    )
    await repository.add_attempts(
        session,
        [
            {
                "delivery_id": delivery_id,
                "attempt": 0,
                "status": planned.status,
                "reason": planned.reason,
                "provider_message_id": None,
                "started_at": planned.planned_at,
                "latency_ms": None,
                "retry_at": None if suppressed else planned.not_before,
            }
        ],
    )
    return QueuedOutcome(delivery_id, planned.status)


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    items: list[DeliveryRow]
    next_cursor: str | None


async def list_deliveries(
    session: AsyncSession,
    workspace_id: str,
    *,
    account_id: str | None = None,
    contact_id: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> DeliveryPage:
    """A page of the workspace's deliveries, newest first; raises ``BadCursor``."""
    after = decode_cursor(cursor) if cursor else None
    rows = await repository.page(
        session,
        workspace_id,
        account_id=account_id,
        contact_id=contact_id,
        status=status,
        after=after,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    return DeliveryPage(
        rows, encode_cursor(last.planned_at, last.delivery_id) if last is not None else None
    )
