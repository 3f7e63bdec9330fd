"""How the delivery side joins the messaging service: its routers and its background work
(the dispatcher, the task escalation check, the subscriptions consumer)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial

from fastapi import APIRouter
from fastapi.params import Depends

from services.messaging.channels.registry import open_channels, url_guard
from services.messaging.deliveries.dispatcher import dispatcher_for
from services.messaging.deliveries.endpoints import deliveries_router
from services.messaging.deliveries.handoff import Handoff
from services.messaging.feed.endpoints import feed_router
from services.messaging.processing.consumer import ConsumerMetrics, Polling
from services.messaging.settings import MessagingSettings
from services.messaging.subscriptions.consumer import SubscriptionsConsumer
from services.messaging.subscriptions.endpoints import subscriptions_router
from services.messaging.tasks.endpoints import tasks_router
from services.messaging.tasks.service import escalate_forever
from shared.runtime import Resources
from shared.supervision import Worker

HANDOFF_BATCHES = 10
"""Dispatch batches the handoff holds at most before planners leave deliveries to claims."""


def delivery_routers(
    settings: MessagingSettings, resources: Resources, *, dependencies: list[Depends]
) -> list[APIRouter]:
    """Deliveries, tasks and subscriptions (behind ``dependencies``: the admin token) and
    the in-app feed (the workspace write key)."""
    return [
        deliveries_router(resources, dependencies=dependencies),
        tasks_router(resources, dependencies=dependencies, crm_url=settings.crm_task_webhook_url),
        subscriptions_router(resources, dependencies=dependencies, guard=url_guard(settings)),
        feed_router(resources),
    ]


async def dispatch_forever(
    settings: MessagingSettings,
    resources: Resources,
    *,
    wake: asyncio.Event | None = None,
    handoff: Handoff | None = None,
) -> None:
    """Open the channels and send due deliveries until cancelled; ``wake`` (set when
    deliveries are queued in this process) ends an idle wait early, and ``handoff`` holds
    those planned here already leased."""
    async with open_channels(settings, resources.sessions, resources.clock) as channels:
        dispatcher = dispatcher_for(
            settings,
            sessions=resources.sessions,
            bus=resources.bus,
            clock=resources.clock,
            channels=channels,
            registry=resources.registry,
            tracing=resources.tracing,
            wake=wake,
            handoff=handoff,
        )
        await dispatcher.run()


def delivery_background(
    settings: MessagingSettings,
    resources: Resources,
    *,
    consumer_metrics: ConsumerMetrics,
    queued: asyncio.Event,
) -> list[Worker]:
    """The work to run beside the API; ``consumer_metrics`` is the service's one set, and
    ``queued`` is set by whoever queues deliveries, to wake the dispatcher at once. The
    subscriptions' deliveries due at once go to the dispatcher through a handoff."""
    handoff = Handoff(
        lease=timedelta(seconds=settings.claim_lease_seconds),
        backlog=HANDOFF_BATCHES * settings.dispatch_batch,
        wake=queued,
    )
    subscriptions = SubscriptionsConsumer(
        bus=resources.bus,
        sessions=resources.sessions,
        clock=resources.clock,
        group_id=settings.subscriptions_group_id,
        retention=timedelta(days=settings.replay_retention_days),
        metrics=consumer_metrics,
        polling=Polling.of(settings),
        on_applied=queued.set,
        handoff=handoff,
    )
    dispatching = partial(dispatch_forever, settings, resources, wake=queued, handoff=handoff)
    return [
        Worker("messaging-dispatcher", dispatching),
        Worker(
            "messaging-task-escalation",
            partial(
                escalate_forever,
                resources.sessions,
                resources.clock,
                interval_seconds=settings.task_check_interval_seconds,
                crm_url=settings.crm_task_webhook_url,
            ),
        ),
        Worker("messaging-subscriptions", subscriptions.run),
    ]
