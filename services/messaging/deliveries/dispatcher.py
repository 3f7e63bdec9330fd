"""The dispatcher: claims due deliveries, sends them, records every attempt.

One :meth:`Dispatcher.step`:

1. **claim** (one statement, one transaction): up to ``dispatch_batch`` deliveries with
   ``due_at <= now``, highest priority first, leased for ``claim_lease_seconds``
   (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so several dispatchers share the work);
2. **rate limits**: a delivery whose channel has no token left is released, due when the
   next token is, without counting an attempt;
3. **send** the rest concurrently (at most ``dispatch_concurrency`` in flight);
4. **dead letters** of the deliveries given up on are published to
   ``milepost.deliveries.dlq`` (before 5: a crash in between publishes them again, with
   the same delivery id);
5. **record** (one transaction): each delivery's new status and its attempt row. A send
   that bounced (:attr:`SendResult.bounced`) also marks the contact's address bounced and
   queues the same message on the playbook step's next channel that reaches the contact
   (:func:`follow_up`), once: its key is the step id + ``@channel``.

Each send is a ``messaging send`` span (kind client) continuing the trace the delivery was
planned in (its ``trace`` column); with tracing off it costs nothing.

A crash after 1 leaves claimed deliveries leased; they are due again when the lease ends
and are sent again with the same idempotency key. Delivery is at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.channels.base import Channel, SendResult
from services.messaging.contacts import service as contacts
from services.messaging.contacts.directory import Contact
from services.messaging.deliveries import repository
from services.messaging.deliveries.handoff import Handoff
from services.messaging.deliveries.message import Message
from services.messaging.deliveries.rate_limits import RateLimits
from services.messaging.deliveries.retries import Decision, Draw, decide
from services.messaging.deliveries.service import queue_delivery
from services.messaging.playbooks import service as playbooks
from services.messaging.playbooks.files import Step
from services.messaging.processing.planning import reach
from services.messaging.settings import MessagingSettings
from services.messaging.subscriptions import repository as subscriptions
from shared.bus import Bus, OutgoingRecord
from shared.clock import Clock
from shared.contracts.topics import FailedDelivery, Topic
from shared.observability.tracing import Tracing

logger = logging.getLogger(__name__)


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "milepost_messaging_deliveries",
            "Send attempts by channel and outcome (sent, retrying, failed, rate_limited).",
            ["channel", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "milepost_messaging_send_seconds",
            "Time to send one message, by channel.",
            ["channel"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.backlog = Gauge(
            "milepost_messaging_deliveries_due",
            "Deliveries due but not claimed after the last dispatch step (the backlog).",
            registry=registry,
        )


@dataclass(frozen=True, slots=True)
class Attempted:
    message: Message
    result: SendResult
    decision: Decision
    started_at: datetime
    latency_seconds: float


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    """The dispatcher's settings, as values."""

    schedule: tuple[float, ...]
    batch: int
    concurrency: int
    lease: timedelta
    idle_seconds: float
    default_secret: str | None
    """Signs webhooks that are not a subscription's; none: they fail (see ``attempt``)."""
    lanes: int = 1
    """Steps in flight at once on PostgreSQL (see :meth:`Dispatcher.run`)."""

    @classmethod
    def from_settings(cls, settings: MessagingSettings) -> DispatchPolicy:
        return cls(
            schedule=tuple(settings.retry_schedule_seconds),
            batch=settings.dispatch_batch,
            concurrency=settings.dispatch_concurrency,
            lease=timedelta(seconds=settings.claim_lease_seconds),
            idle_seconds=settings.dispatch_interval_ms / 1000,
            default_secret=(
                settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
            ),
            lanes=settings.dispatch_lanes,
        )


NO_WEBHOOK_SECRET = "no signing secret: set MILEPOST_MESSAGING_WEBHOOK_SECRET"  # noqa: S105

FOLLOW_UP = "@"
"""Joins a step id and the channel of a bounce's follow-up: ``onboarding/nudge@feishu``."""


def planned_step_id(step_id: str) -> str:
    """The step id a delivery was planned under, without a follow-up's ``@channel``."""
    return step_id.split(FOLLOW_UP, 1)[0]


def follow_up(message: Message, step: Step, contact: Contact, now: datetime) -> Message | None:
    """The bounced ``message`` on ``step``'s next channel that reaches ``contact`` (with the
    bounce recorded), due at ``now``; ``None`` when no channel does.

    Its step id is the planned one + ``@channel``: a deterministic key, so a replayed
    record queues it once, and a bounce of the follow-up itself gets its own key."""
    reached = reach(step.channels, contact, url=step.url)
    if reached is None:
        return None
    channel, target = reached
    return replace(
        message,
        step_id=f"{planned_step_id(message.step_id)}{FOLLOW_UP}{channel}",
        role=None,  # not a plan of the trigger worker: budgets and cooldowns skip it
        channel=channel,
        target=target,
        planned_at=now,
        not_before=now,
        status="queued",
        reason=None,
        attempt=0,
        signing_secret=None,
        delivery_id="",
    )


def full_jitter(bound: float) -> float:
    return random.uniform(0.0, bound)  # noqa: S311 (spreading retries, not a secret)


class Dispatcher:
    """Sends due deliveries until cancelled; see the module docstring."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        clock: Clock,
        channels: Mapping[str, Channel],
        policy: DispatchPolicy,
        rate_limits: RateLimits,
        metrics: DeliveryMetrics,
        draw: Draw = full_jitter,
        tracing: Tracing | None = None,
        wake: asyncio.Event | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.clock = clock
        self.channels = channels
        self.policy = policy
        self.rate_limits = rate_limits
        self.metrics = metrics
        self.draw = draw
        self.tracing = tracing or Tracing.off()
        self.wake = wake
        self.waking = asyncio.Lock()
        """Held by the one idle lane that waits for ``wake`` (see :meth:`idle`)."""
        self.gate = asyncio.Semaphore(policy.concurrency)
        self.handoff = handoff
        self.claimed_at = float("-inf")
        """When a step last claimed from the database (monotonic seconds)."""

    async def run(self) -> None:
        """Step in ``policy.lanes`` loops (:meth:`lane`) until cancelled: while one lane
        claims or records, another's sends are in flight, all of them within
        ``policy.concurrency``. Claims are disjoint only on PostgreSQL (``SKIP LOCKED``);
        SQLite has one writer, so it runs one lane."""
        async with self.sessions() as session:
            lanes = self.policy.lanes if repository.claims_are_disjoint(session) else 1
        async with asyncio.TaskGroup() as group:
            for _ in range(lanes):
                group.create_task(self.lane())

    async def lane(self) -> None:
        """Step until cancelled. A step that claimed fewer deliveries than a batch holds
        took all that were due, so the next waits (:meth:`idle`) instead of claiming again
        at once (a transaction that would find nothing); after a wait no wake-up ended,
        it claims from the database only if no lane did for ``idle_seconds``."""
        woken = True
        while True:
            try:
                handled = await self.step(claim=woken)
            except Exception:
                logger.exception("dispatch step failed; retrying after a pause")
                handled = 0
            woken = handled >= self.policy.batch or await self.idle()

    async def idle(self) -> bool:
        """Wait ``idle_seconds``, or less when ``wake`` is set (deliveries were just queued
        in this process); deferred and retried deliveries are found by the wait's end.
        Whether a wake-up ended it (always, without ``wake``: every wait ends in a claim).

        One idle lane at a time waits for ``wake``, the others for it to take its turn: a
        wake-up sends one lane to claim what was queued, not every lane (the others' claims
        would find nothing), and the next lane waits for the next wake-up meanwhile."""
        if self.wake is None:
            await asyncio.sleep(self.policy.idle_seconds)
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.policy.idle_seconds), self.waking:
                await self.wake.wait()
                self.wake.clear()
                return True
        return False

    async def step(self, *, claim: bool = True) -> int:
        """Claim (see :meth:`claim`), send and record one batch; returns how many
        deliveries were claimed."""
        now = self.clock.now()
        claimed, limited = await self.claim(now, due=claim)
        attempts = await asyncio.gather(*(self.attempt(c) for c in claimed))
        letters = [self.dead_letter(a) for a in attempts if a.decision.dead_letter]
        if letters:
            await self.bus.publish(letters)
        async with self.sessions() as session:
            await self.record(session, attempts)
            await session.commit()
        return len(claimed) + len(limited)

    async def claim(self, now: datetime, *, due: bool = True) -> tuple[list[Message], list[str]]:
        """The deliveries this step sends, and those it gave back (rate limited): what the
        handoff holds and what is due in the database, claimed when the handoff held none
        and ``due`` (the lane was woken or its last batch was full), or when no lane
        claimed for ``idle_seconds`` (so the due ones others planned are not starved)."""
        handed = self.handoff.take(self.policy.batch, now=now) if self.handoff else []
        periodic = time.monotonic() - self.claimed_at >= self.policy.idle_seconds
        claiming = (due and not handed) or periodic
        async with self.sessions() as session:
            taken = [*handed, *(await self.claim_due(session, now) if claiming else [])]
            ready, limited = await self.admit(session, taken, now)
            await session.commit()
        return ready, limited

    async def claim_due(self, session: AsyncSession, now: datetime) -> list[Message]:
        """Lease the due deliveries (see :func:`repository.claim_due`), signed."""
        self.claimed_at = time.monotonic()
        rows = await repository.claim_due(
            session, now=now, limit=self.policy.batch, lease=self.policy.lease
        )
        secrets = await subscriptions.secrets_of(
            session,
            sorted(
                {r["target"]["subscription_id"] for r in rows if "subscription_id" in r["target"]}
            ),
        )
        full = len(rows) == self.policy.batch
        self.metrics.backlog.set(await repository.count_due(session, now) if full else 0)
        return [self.claimed(row, secrets) for row in rows]

    async def admit(
        self, session: AsyncSession, taken: list[Message], now: datetime
    ) -> tuple[list[Message], list[str]]:
        """``taken`` less those whose channel has no token left, given back (due when the
        next token is, without counting an attempt); the ids given back."""
        ready: list[Message] = []
        limited: list[str] = []
        for message in taken:
            wait = self.rate_limits.take(message.channel or "", now)
            if wait <= 0:
                ready.append(message)
                continue
            limited.append(message.delivery_id)
            await repository.release(
                session, message.delivery_id, due_at=now + timedelta(seconds=wait)
            )
            self.metrics.deliveries.labels(message.channel, "rate_limited").inc()
        return ready, limited

    def claimed(self, row: repository.Claimed, secrets: Mapping[str, str]) -> Message:
        """The claimed row's message, signed with its subscription's secret (or the default
        one for a webhook that is not a subscription's)."""
        subscription_id = row["target"].get("subscription_id")
        secret = secrets.get(subscription_id) if subscription_id else self.policy.default_secret
        return repository.message_of(row, signing_secret=secret)

    async def attempt(self, message: Message) -> Attempted:
        channel = self.channels.get(message.channel or "")
        started_at = self.clock.now()
        began = time.perf_counter()
        if channel is None:
            result = SendResult.permanent(f"no {message.channel!r} channel is configured")
        elif message.channel == "webhook" and message.signing_secret is None:
            result = SendResult.permanent(
                "its subscription was deleted"
                if "subscription_id" in message.target
                else NO_WEBHOOK_SECRET
            )
        else:
            async with self.gate:
                result = await self.send(channel, message)
        latency = time.perf_counter() - began
        decision = decide(
            result,
            attempt=message.attempt,
            schedule=self.policy.schedule,
            now=self.clock.now(),
            draw=self.draw,
        )
        self.metrics.deliveries.labels(message.channel, decision.status).inc()
        self.metrics.latency.labels(message.channel).observe(latency)
        return Attempted(message, result, decision, started_at, latency)

    async def send(self, channel: Channel, message: Message) -> SendResult:
        """One send, in a span continuing the delivery's trace."""
        with self.tracing.span(
            "messaging send",
            parent=message.trace,
            kind=SpanKind.CLIENT,
            attributes={
                "delivery.id": message.delivery_id,
                "messaging.channel": message.channel or "",
            },
        ):
            try:
                return await channel.send(message)
            except Exception as exc:  # an adapter bug must not stop the dispatcher
                logger.exception("channel raised", extra={"channel": message.channel})
                return SendResult.retryable(f"channel error: {type(exc).__name__}: {exc}")

    async def record(self, session: AsyncSession, attempts: Sequence[Attempted]) -> None:
        """Each delivery's new status and its attempt row, two statements for the batch (a
        bounce also marks the contact and queues the follow-up)."""
        now = self.clock.now()
        finished: list[repository.FinishedAttempt] = []
        rows: list[dict[str, Any]] = []
        for attempted in attempts:
            message, result, decision = attempted.message, attempted.result, attempted.decision
            reason = result.reason
            if result.bounced and decision.status == "failed":
                reason = await self.follow_bounce(session, message, reason or "bounced")
            finished.append(
                repository.FinishedAttempt(
                    delivery_id=message.delivery_id,
                    status=decision.status,
                    reason=reason,
                    provider_message_id=result.provider_message_id,
                    due_at=decision.due_at,
                    finished_at=now if decision.due_at is None else None,
                )
            )
            rows.append(
                {
                    "delivery_id": message.delivery_id,
                    "attempt": message.attempt,
                    "status": "sent" if decision.status == "sent" else "failed",
                    "reason": reason,
                    "provider_message_id": result.provider_message_id,
                    "started_at": attempted.started_at,
                    "latency_ms": round(attempted.latency_seconds * 1000, 3),
                    "retry_at": decision.due_at,
                }
            )
            if decision.status == "failed":
                logger.warning(
                    "delivery failed",
                    extra={
                        "delivery_id": message.delivery_id,
                        "channel": message.channel,
                        "attempts": message.attempt,
                        "reason": reason,
                    },
                )
        await repository.finish_attempts(session, finished)
        await repository.add_attempts(session, rows)

    async def follow_bounce(self, session: AsyncSession, message: Message, reason: str) -> str:
        """Mark the contact's address bounced and queue the follow-up (idempotent); the
        failed delivery's reason, saying what became of the message."""
        now = self.clock.now()
        contact = await contacts.record_bounce(
            session, message.workspace_id, message.contact_id, message.channel or "", now=now
        )
        if contact is None:
            return f"{reason}; the contact is no longer in the directory"
        step = await self.step_of(session, message)
        planned = None if step is None else follow_up(message, step, contact, now)
        if planned is None:
            return f"{reason}; no other channel reaches the contact"
        queued = await queue_delivery(session, planned)
        return f"{reason}; followed up on {planned.channel} ({queued.delivery_id})"

    async def step_of(self, session: AsyncSession, message: Message) -> Step | None:
        """The playbook step the delivery was planned from, as published then."""
        if message.playbook_id is None or message.playbook_version is None:
            return None
        own_id = planned_step_id(message.step_id).removeprefix(f"{message.playbook_id}/")
        return await playbooks.pinned_step(
            session, message.workspace_id, message.playbook_id, message.playbook_version, own_id
        )

    def dead_letter(self, attempted: Attempted) -> OutgoingRecord:
        message = attempted.message
        letter = FailedDelivery(
            delivery_id=message.delivery_id,
            workspace_id=message.workspace_id,
            account_id=message.account_id,
            trigger_id=message.trigger_id,
            contact_id=message.contact_id,
            step_id=message.step_id,
            channel=message.channel or "",
            attempts=message.attempt,
            reason=attempted.result.reason or "failed",
            failed_at=self.clock.now(),
        )
        key = f"{message.workspace_id}/a/{message.account_id}".encode()
        return OutgoingRecord(Topic.DELIVERIES_DLQ, key, letter.model_dump_json().encode())


def dispatcher_for(
    settings: MessagingSettings,
    *,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus,
    clock: Clock,
    channels: Mapping[str, Channel],
    registry: CollectorRegistry,
    tracing: Tracing | None = None,
    wake: asyncio.Event | None = None,
    handoff: Handoff | None = None,
) -> Dispatcher:
    return Dispatcher(
        sessions=sessions,
        bus=bus,
        clock=clock,
        channels=channels,
        policy=DispatchPolicy.from_settings(settings),
        rate_limits=RateLimits(settings.rate_limits_per_second),
        metrics=DeliveryMetrics(registry),
        tracing=tracing,
        wake=wake,
        handoff=handoff,
    )
