"""Planned deliveries, a scripted channel and a dispatcher on a frozen clock."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.channels.base import Channel, SendResult
from services.messaging.deliveries.dispatcher import DeliveryMetrics, Dispatcher, DispatchPolicy
from services.messaging.deliveries.handoff import Handoff
from services.messaging.deliveries.message import Message
from services.messaging.deliveries.rate_limits import RateLimits
from shared.bus import Bus
from shared.clock import FrozenClock
from shared.observability.tracing import Tracing

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
SCHEDULE = (10.0, 40.0, 160.0)
LEASE = timedelta(seconds=120)
"""The lease of the test dispatcher's claims."""


def planned(**fields: Any) -> Message:
    values: dict[str, Any] = {
        "workspace_id": "ws_test",
        "account_id": "acme",
        "trigger_id": "t-1",
        "playbook_id": "onboarding",
        "playbook_version": 1,
        "step_id": "onboarding/nudge",
        "contact_id": "c-admin",
        "channel": "webhook",
        "target": {"url": "http://hooks.example.com/x"},
        "subject": "Finish your profile",
        "body": "Two steps left.",
        "category": "onboarding",
        "priority": 0,
        "planned_at": T0,
        "not_before": T0,
        **fields,
    }
    return Message(**values)


@dataclass
class ScriptedChannel:
    """Answers from ``script`` (``sent`` once it is used up) and keeps what it was given."""

    script: deque[SendResult] = field(default_factory=deque)
    sent: list[Message] = field(default_factory=list)

    async def send(self, message: Message) -> SendResult:
        self.sent.append(message)
        return self.script.popleft() if self.script else SendResult.sent(f"p-{len(self.sent)}")


def dispatcher(
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus,
    clock: FrozenClock,
    channels: Mapping[str, Channel],
    *,
    rates: Mapping[str, float] | None = None,
    batch: int = 100,
    registry: CollectorRegistry | None = None,
    tracing: Tracing | None = None,
    idle_seconds: float = 0.01,
    wake: asyncio.Event | None = None,
    lanes: int = 1,
    handoff: Handoff | None = None,
) -> Dispatcher:
    return Dispatcher(
        sessions=sessions,
        bus=bus,
        clock=clock,
        channels=channels,
        policy=DispatchPolicy(
            schedule=SCHEDULE,
            batch=batch,
            concurrency=8,
            lease=LEASE,
            idle_seconds=idle_seconds,
            default_secret="whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0",
            lanes=lanes,
        ),
        rate_limits=RateLimits(rates or {}),
        metrics=DeliveryMetrics(registry or CollectorRegistry()),
        draw=lambda bound: bound,
        tracing=tracing,
        wake=wake,
        handoff=handoff,
    )
