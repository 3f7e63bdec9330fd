"""Queueing planned deliveries, once each."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.deliveries import repository
from services.messaging.deliveries.cursors import decode_cursor, encode_cursor
from services.messaging.deliveries.models import DeliveryRow
from services.messaging.deliveries.planned import PlannedDelivery

QueuedStatus = Literal["queued", "deferred", "suppressed", "failed", "duplicate"]
FINAL_AT_PLANNING = frozenset({"suppressed", "failed"})
"""Statuses recorded at planning that are never sent."""


def delivery_id_of(trigger_id: str, contact_id: str, step_id: str) -> str:
    """The delivery's id, deterministic in its key: the same trigger, contact and step
    always give the same id (the ``webhook-id`` and idempotency key sent to providers)."""
    digest = hashlib.sha256(f"{trigger_id}\x1f{contact_id}\x1f{step_id}".encode()).hexdigest()
    return f"dlv_{digest[:32]}"


@dataclass(frozen=True, slots=True)
class QueuedOutcome:
    """What queueing did: ``duplicate`` when the key was already queued (nothing written),
    otherwise the status recorded."""

    delivery_id: str
    status: QueuedStatus


async def queue_deliveries(
    session: AsyncSession, planned: Sequence[PlannedDelivery]
) -> list[QueuedOutcome]:
    """Record each of ``planned`` with its attempt 0, in three statements whatever their
    number; queued and deferred ones become due at ``not_before``, suppressed and failed
    ones are kept with their reason and never sent. Outcomes are in ``planned``'s order.

    Idempotent on (``trigger_id``, ``contact_id``, ``step_id``): a replayed trigger queues
    nothing twice, nor does a key repeated within ``planned``. Flushes only; the caller's
    transaction commits.
    """
    ids = [delivery_id_of(p.trigger_id, p.contact_id, p.step_id) for p in planned]
    seen = await repository.existing_ids(session, ids)
    outcomes: list[QueuedOutcome] = []
    deliveries: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    for delivery_id, delivery in zip(ids, planned, strict=True):
        if delivery_id in seen:
            outcomes.append(QueuedOutcome(delivery_id, "duplicate"))
            continue
        seen.add(delivery_id)
        final = delivery.status in FINAL_AT_PLANNING
        deliveries.append(
            {
                "delivery_id": delivery_id,
                "workspace_id": delivery.workspace_id,
                "account_id": delivery.account_id,
                "trigger_id": delivery.trigger_id,
                "contact_id": delivery.contact_id,
                "step_id": delivery.step_id,
                "playbook_id": delivery.playbook_id,
                "playbook_version": delivery.playbook_version,
                "channel": delivery.channel,
                "target": dict(delivery.target),
                "subject": delivery.subject,
                "body": delivery.body,
                "category": delivery.category,
                "priority": delivery.priority,
                "status": delivery.status,
                "reason": delivery.reason,
                "attempts": 0,
                "provider_message_id": None,
                "planned_at": delivery.planned_at,
                "not_before": delivery.not_before,
                "due_at": None if final else delivery.not_before,
                "finished_at": delivery.planned_at if final else None,
                "trace": dict(delivery.trace),
            }
        )
        attempts.append(
            {
                "delivery_id": delivery_id,
                "attempt": 0,
                "status": delivery.status,
                "reason": delivery.reason,
                "provider_message_id": None,
                "started_at": delivery.planned_at,
                "latency_ms": None,
                "retry_at": None if final else delivery.not_before,
            }
        )
        outcomes.append(QueuedOutcome(delivery_id, delivery.status))
    await repository.insert_deliveries(session, deliveries)
    await repository.add_attempts(session, attempts)
    return outcomes


async def queue_delivery(session: AsyncSession, planned: PlannedDelivery) -> QueuedOutcome:
    """:func:`queue_deliveries` for one delivery."""
    (outcome,) = await queue_deliveries(session, [planned])
    return outcome


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
