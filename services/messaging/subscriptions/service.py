"""Subscriptions: marketing systems receive the triggers they filter for as signed
webhooks, through the delivery service (same retries, rate limits and dead letters).

Each matching trigger becomes a delivery on the ``webhook`` channel keyed by (trigger id,
``subscription:{id}``, ``subscription``): a replayed trigger is sent once. Its body is
``{"type": "trigger.<kind>", "timestamp", "data": <TriggerEnvelope>}``, signed with the
subscription's own secret.

Replays: the subscriptions consumer keeps every trigger it sees (``messaging_subscription_
triggers``), so a replay of a time range re-reads them from the database, not from the
topic (whose retention is seven days) — a replay reaches back to when Milepost first saw
the trigger. Each replay request has its own id, part of the delivery key, so a replay
sends the range again even to a subscription that already received it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.channels.guard import UrlGuard
from services.messaging.channels.webhooks import new_secret
from services.messaging.deliveries.handoff import Handed
from services.messaging.deliveries.message import Message
from services.messaging.deliveries.service import queue_deliveries
from services.messaging.errors import MessagingError
from services.messaging.processing.received import ReceivedTrigger, trigger_from_json
from services.messaging.subscriptions import repository
from services.messaging.subscriptions.models import SubscriptionRow
from shared.contracts.triggers import TriggerRecord
from shared.errors import Invalid, NotFound

REPLAY_BATCH = 500
MAX_REPLAY_TRIGGERS = 50_000


class SubscriptionNotFound(MessagingError, NotFound):
    """No subscription by that id in the workspace."""

    field = "subscription_id"


class ReplayTooLarge(MessagingError, Invalid):
    """The range holds more triggers than one replay sends; ask for a shorter range."""

    field = "since"


@dataclass(frozen=True, slots=True)
class Filters:
    """Empty lists match everything; a trigger matches when each non-empty list holds its
    value (for ``roles``: one of its target roles)."""

    kinds: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


def filters_of(row: SubscriptionRow) -> Filters:
    return Filters(tuple(row.kinds), tuple(row.paths), tuple(row.nodes), tuple(row.roles))


def matches(filters: Filters, trigger: TriggerRecord) -> bool:
    roles = {role.value for role in trigger.target_roles}
    return (
        (not filters.kinds or trigger.kind.value in filters.kinds)
        and (not filters.paths or trigger.path_id in filters.paths)
        and (not filters.nodes or trigger.node in filters.nodes)
        and (not filters.roles or bool(roles.intersection(filters.roles)))
    )


async def create_subscription(
    session: AsyncSession,
    workspace_id: str,
    *,
    url: str,
    filters: Filters,
    description: str | None,
    guard: UrlGuard,
    now: datetime,
) -> SubscriptionRow:
    """A new active subscription with a fresh secret; raises ``UrlRefused`` for a URL the
    guard does not let through."""
    await guard.check(url)
    row = {
        "subscription_id": f"sub_{secrets.token_hex(12)}",
        "workspace_id": workspace_id,
        "url": url,
        "secret": new_secret(),
        "description": description,
        "kinds": list(filters.kinds),
        "paths": list(filters.paths),
        "nodes": list(filters.nodes),
        "roles": list(filters.roles),
        "active": True,
        "created_at": now,
        "updated_at": now,
    }
    await repository.add(session, row)
    return await get_subscription(session, workspace_id, str(row["subscription_id"]))


async def get_subscription(
    session: AsyncSession, workspace_id: str, subscription_id: str
) -> SubscriptionRow:
    row = await repository.get(session, workspace_id, subscription_id)
    if row is None:
        raise SubscriptionNotFound(f"no subscription {subscription_id!r}")
    return row


async def update_subscription(
    session: AsyncSession,
    workspace_id: str,
    subscription_id: str,
    *,
    changes: dict[str, Any],
    guard: UrlGuard,
    now: datetime,
) -> SubscriptionRow:
    """Change ``url``, ``description``, ``active`` or a filter list."""
    row = await get_subscription(session, workspace_id, subscription_id)
    if "url" in changes:
        await guard.check(changes["url"])
    for name, value in changes.items():
        setattr(row, name, list(value) if isinstance(value, tuple | list) else value)
    row.updated_at = now
    await session.flush()
    return row


async def delete_subscription(
    session: AsyncSession, workspace_id: str, subscription_id: str
) -> None:
    """Deliveries still queued for it then fail (their secret is gone)."""
    await repository.delete(session, await get_subscription(session, workspace_id, subscription_id))


@dataclass(frozen=True, slots=True)
class FannedOut:
    """What a fan-out queued: how many deliveries, and those stored leased to this process
    (to hand to its dispatcher once the transaction commits)."""

    queued: int
    leased: list[Handed]


async def fan_out(
    session: AsyncSession,
    received: Sequence[ReceivedTrigger],
    now: datetime,
    *,
    leased_until: datetime | None = None,
) -> FannedOut:
    """Remember the triggers for replays and queue one delivery per matching active
    subscription, carrying the trigger's trace and signed with the subscription's secret;
    replays of a trigger queue none. With ``leased_until`` they are stored leased until
    then (:mod:`services.messaging.deliveries.handoff`)."""
    if not received:
        return FannedOut(0, [])
    envelopes = {r.trigger.trigger_id: msgspec.json.encode(r.trigger).decode() for r in received}
    await repository.remember_triggers(
        session,
        [
            {
                "trigger_id": r.trigger.trigger_id,
                "workspace_id": r.trigger.workspace_id,
                "account_id": r.trigger.account_id,
                "occurred_at": r.trigger.occurred_at,
                "envelope": envelopes[r.trigger.trigger_id],
            }
            for r in received
        ],
    )
    by_workspace: dict[str, list[SubscriptionRow]] = {}
    for row in await repository.active_of(session, {r.trigger.workspace_id for r in received}):
        by_workspace.setdefault(row.workspace_id, []).append(row)
    planned = [
        _planned(
            subscription,
            r.trigger,
            "subscription",
            now,
            body=envelopes[r.trigger.trigger_id],
            trace=r.trace,
        )
        for r in received
        for subscription in by_workspace.get(r.trigger.workspace_id, [])
        if matches(filters_of(subscription), r.trigger)
    ]
    outcomes = await queue_deliveries(session, planned, leased_until=leased_until)
    leased = [
        Handed(o.leased, leased_until)
        for o in outcomes
        if o.leased is not None and leased_until is not None
    ]
    return FannedOut(sum(o.status != "duplicate" for o in outcomes), leased)


async def replay(
    session: AsyncSession,
    workspace_id: str,
    subscription_id: str,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
) -> tuple[str, int]:
    """Queue again every remembered trigger of ``[since, until)`` that matches the
    subscription; returns the replay's id and how many were queued. Raises
    :class:`ReplayTooLarge` (nothing queued) beyond ``MAX_REPLAY_TRIGGERS``."""
    subscription = await get_subscription(session, workspace_id, subscription_id)
    filters = filters_of(subscription)
    replay_id = (
        "rpl_"
        + hashlib.sha256(
            f"{subscription_id}|{since.isoformat()}|{until.isoformat()}|{now.isoformat()}".encode()
        ).hexdigest()[:16]
    )
    queued, seen, after = 0, 0, None
    while True:
        rows = await repository.triggers_between(
            session, workspace_id, since=since, until=until, after=after, limit=REPLAY_BATCH
        )
        if not rows:
            return replay_id, queued
        seen += len(rows)
        if seen > MAX_REPLAY_TRIGGERS:
            raise ReplayTooLarge(
                f"more than {MAX_REPLAY_TRIGGERS} triggers in the range; replay a shorter one"
            )
        matching = [
            (trigger, row.envelope)
            for row in rows
            if matches(filters, trigger := trigger_from_json(row.envelope))
        ]
        await queue_deliveries(
            session,
            [
                _planned(subscription, trigger, f"replay:{replay_id}", now, body=body)
                for trigger, body in matching
            ],
        )
        queued += len(matching)
        after = (rows[-1].occurred_at, rows[-1].trigger_id)


def _planned(
    subscription: SubscriptionRow,
    trigger: TriggerRecord,
    step_id: str,
    now: datetime,
    *,
    body: str,
    trace: Mapping[str, str] | None = None,
) -> Message:
    """The delivery of ``trigger`` to ``subscription``; ``body`` is the trigger's JSON."""
    return Message(
        workspace_id=trigger.workspace_id,
        account_id=trigger.account_id,
        trigger_id=trigger.trigger_id,
        step_id=step_id,
        contact_id=f"subscription:{subscription.subscription_id}",
        channel="webhook",
        target={
            "url": subscription.url,
            "subscription_id": subscription.subscription_id,
            "event_type": f"trigger.{trigger.kind.value}",
        },
        subject=f"{trigger.kind.value}: {trigger.reason}"[:500],
        body=body,
        category="subscription",
        priority=0,
        planned_at=now,
        not_before=now,
        trace=trace or {},
        signing_secret=subscription.secret,
    )
