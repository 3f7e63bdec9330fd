"""Queueing planned deliveries, once each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.deliveries import repository
from services.messaging.deliveries.cursors import decode_cursor, encode_cursor
from services.messaging.deliveries.message import Message, MessageStatus
from services.messaging.deliveries.models import DeliveryRow

QueuedStatus = MessageStatus | Literal["duplicate"]


@dataclass(frozen=True, slots=True)
class QueuedOutcome:
    """What queueing did: ``duplicate`` when the key was already queued (nothing written),
    otherwise the status recorded; ``leased``: the message as stored leased, if it was."""

    delivery_id: str
    status: QueuedStatus
    leased: Message | None = None


async def queue_deliveries(
    session: AsyncSession, messages: Sequence[Message], *, leased_until: datetime | None = None
) -> list[QueuedOutcome]:
    """Record each of ``messages`` with its attempt 0, in two statements whatever their
    number; queued and deferred ones become due at ``not_before``, suppressed and failed
    ones are kept with their reason and never sent. Outcomes are in ``messages``' order.

    Idempotent on (``trigger_id``, ``contact_id``, ``step_id``), the delivery id: a replayed
    trigger queues nothing twice, nor does a key repeated within ``messages`` (the first
    is kept). Flushes only; the caller's transaction commits. With ``leased_until`` those
    due at once are stored leased to the caller's process (:mod:`.handoff`).
    """
    distinct: dict[str, Message] = {}
    for message in messages:
        distinct.setdefault(message.delivery_id, message)
    inserted = await repository.insert_deliveries(
        session, list(distinct.values()), leased_until=leased_until
    )
    outcomes: list[QueuedOutcome] = []
    for message in messages:
        fresh = message.delivery_id in inserted
        inserted.discard(message.delivery_id)  # its repeats within ``messages`` are duplicates
        if not fresh:
            outcomes.append(QueuedOutcome(message.delivery_id, "duplicate"))
            continue
        leased = repository.leased_at_planning(message, leased_until)
        outcomes.append(QueuedOutcome(message.delivery_id, message.status, leased))
    return outcomes


async def queue_delivery(session: AsyncSession, message: Message) -> QueuedOutcome:
    """:func:`queue_deliveries` for one message."""
    (outcome,) = await queue_deliveries(session, [message])
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
