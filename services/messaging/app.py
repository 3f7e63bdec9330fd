"""Assemble the messaging service: its consumers, its API, and the standalone service."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, FastAPI, params
from pydantic import SecretStr

from services.admin_api import admin_dependencies
from services.messaging.channels.webhooks import new_secret
from services.messaging.contacts.consumer import ContactsConsumer
from services.messaging.contacts.directory import Contact
from services.messaging.contacts.endpoints import contacts_router, unsubscribe_router
from services.messaging.contacts.owners import owners_router
from services.messaging.deliveries.mounting import delivery_background, delivery_routers
from services.messaging.playbooks.endpoints import playbooks_router
from services.messaging.playbooks.service import (
    REFERENCE_PLAYBOOKS,
    list_playbooks,
    load_catalog,
    publish,
)
from services.messaging.policies.budgets import BudgetLimits
from services.messaging.policies.consent import unsubscribe_token, unsubscribe_url
from services.messaging.policies.timing import QuietHours
from services.messaging.processing.consumer import ConsumerMetrics, Polling
from services.messaging.processing.endpoints import plans_router
from services.messaging.processing.outbound import DeliveryServices
from services.messaging.processing.planning import Policies
from services.messaging.processing.worker import TriggerMetrics, TriggerWorker, UnsubscribeLink
from services.messaging.settings import MessagingSettings
from services.messaging.templates.endpoints import templates_router
from services.messaging.templates.limits import TemplateLimits
from services.serving import serve, service_resources
from shared.bus import Bus
from shared.durations import parse_duration
from shared.observability.http import create_http_app
from shared.private_files import write_private
from shared.published_secrets import warn_of_published_secrets
from shared.runtime import Resources
from shared.settings import RuntimeSettings
from shared.supervision import Worker
from shared.tenancy.service import find_workspace

logger = logging.getLogger(__name__)


def policies_of(settings: MessagingSettings) -> Policies:
    """The planner's policies; a ``ValueError`` naming the variable when one is unusable."""
    start, end = (
        time.fromisoformat(settings.quiet_hours_start),
        time.fromisoformat(settings.quiet_hours_end),
    )
    try:
        window = parse_duration(settings.budget_window)
    except ValueError as exc:
        raise ValueError(f"MILEPOST_MESSAGING_BUDGET_WINDOW: {exc}") from exc
    if window <= timedelta():
        raise ValueError("MILEPOST_MESSAGING_BUDGET_WINDOW: must be longer than zero")
    try:
        ZoneInfo(settings.default_timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"MILEPOST_MESSAGING_DEFAULT_TIMEZONE: {settings.default_timezone!r} is no IANA "
            "timezone name (e.g. Asia/Shanghai)"
        ) from exc
    return Policies(
        opt_in_categories=frozenset(settings.opt_in_categories),
        quiet=None if start == end else QuietHours(start, end),
        default_timezone=settings.default_timezone,
        budgets=BudgetLimits(
            per_contact=settings.budget_per_contact,
            per_account_role=settings.budget_per_account_role,
            window=window,
        ),
        template_limits=template_limits(settings),
    )


def template_limits(settings: MessagingSettings) -> TemplateLimits:
    return TemplateLimits(
        time_seconds=settings.template_time_limit_seconds,
        output_chars=settings.template_output_limit_chars,
        integer_bits=settings.template_integer_limit_bits,
        range_items=settings.template_range_limit,
        depth=settings.template_depth_limit,
    )


def embedded_settings(settings: MessagingSettings, runtime: RuntimeSettings) -> MessagingSettings:
    """The settings of the embedded mode, where not set otherwise: unsubscribe links point
    at this process (``MILEPOST_MESSAGING_PUBLIC_URL``) and are signed with a secret kept in
    the data folder, mode 0600, so they survive restarts (``..._UNSUBSCRIBE_SECRET``), as
    is the webhook signing secret, made on first start (``..._WEBHOOK_SECRET``); outbound URLs may reach loopback addresses (``..._ALLOW_LOOPBACK_TARGETS``), never
    link-local or other private ones unless listed (``..._ALLOWED_TARGET_NETWORKS``)."""
    changes: dict[str, object] = {}
    if "public_url" not in settings.model_fields_set:
        changes["public_url"] = f"http://{runtime.host}:{runtime.port}"
    if "allow_loopback_targets" not in settings.model_fields_set:
        changes["allow_loopback_targets"] = True  # webhooks to a local CRM or test receiver
    if settings.unsubscribe_secret is None:
        changes["unsubscribe_secret"] = kept_secret(
            runtime.data_dir / "unsubscribe-secret", lambda: secrets.token_urlsafe(32)
        )
    if settings.webhook_secret is None:
        changes["webhook_secret"] = kept_secret(runtime.data_dir / "webhook-secret", new_secret)
    return settings.model_copy(update=changes)


def kept_secret(key_file: Path, make: Callable[[], str]) -> SecretStr:
    """The secret kept in ``key_file``; on first use ``make`` makes it, written readable by
    its owner only (0600) from the first byte."""
    if not key_file.exists():
        write_private(key_file, make())
    return SecretStr(key_file.read_text().strip())


def warn_of_missing_secrets(settings: MessagingSettings) -> None:
    """Log a warning at start for a webhook secret that is missing or published."""
    if settings.webhook_secret is None:
        logger.warning(
            "MILEPOST_MESSAGING_WEBHOOK_SECRET is not set: playbook webhooks and task pushes "
            "fail until it is (subscriptions sign with their own secrets)"
        )
    warn_of_published_secrets(settings)


def unsubscribe_secret(settings: MessagingSettings) -> bytes:
    if settings.unsubscribe_secret is not None:
        return settings.unsubscribe_secret.get_secret_value().encode()
    logger.warning(
        "MILEPOST_MESSAGING_UNSUBSCRIBE_SECRET is not set: unsubscribe links are signed with "
        "a key of this process and stop working when it restarts"
    )
    return secrets.token_bytes(32)


def unsubscribe_links(settings: MessagingSettings, secret: bytes) -> UnsubscribeLink:
    valid_for = timedelta(days=settings.unsubscribe_valid_days)

    def link(contact: Contact, category: str, now: datetime) -> str:
        token = unsubscribe_token(
            secret,
            workspace_id=contact.workspace_id,
            contact_id=contact.contact_id,
            category=category,
            now=now,
            valid_for=valid_for,
        )
        return unsubscribe_url(settings.public_url, token)

    return link


class RouterOnBus(Protocol):
    """Routes on the service's bus, behind its admin-token ``dependencies``: what the
    composition hands messaging from elsewhere (the draft simulation, which replays with
    the engine's code)."""

    def __call__(self, bus: Bus, dependencies: Sequence[params.Depends]) -> APIRouter: ...


def mount_messaging(
    app: FastAPI,
    settings: MessagingSettings,
    resources: Resources,
    *,
    simulation: RouterOnBus | None = None,
) -> list[Worker]:
    """Add the messaging API to ``app`` (and the ``simulation`` routes when given); returns
    the background workers to run beside it: the contacts consumer, the trigger worker, and
    the delivery side's dispatcher, task escalation check and subscriptions consumer."""
    dependencies = admin_dependencies(
        resources.sessions, settings.admin_token, variable="MILEPOST_MESSAGING_ADMIN_TOKEN"
    )
    if simulation is not None:
        app.include_router(simulation(resources.bus, dependencies))
    secret = unsubscribe_secret(settings)
    warn_of_missing_secrets(settings)
    app.include_router(contacts_router(resources, dependencies=dependencies))
    app.include_router(owners_router(dependencies=dependencies))
    app.include_router(playbooks_router(resources, dependencies=dependencies))
    app.include_router(
        templates_router(resources, dependencies=dependencies, limits=template_limits(settings))
    )
    app.include_router(plans_router(resources, dependencies=dependencies))
    app.include_router(unsubscribe_router(resources, secret))
    for router in delivery_routers(settings, resources, dependencies=dependencies):
        app.include_router(router)
    consumer_metrics = ConsumerMetrics(resources.registry)
    contacts = ContactsConsumer(
        bus=resources.bus,
        sessions=resources.sessions,
        clock=resources.clock,
        group_id=settings.contacts_group_id,
        metrics=consumer_metrics,
        polling=Polling.of(settings),
        crm_url=settings.crm_task_webhook_url,
    )
    queued = asyncio.Event()
    triggers = TriggerWorker(
        load_catalog=load_catalog,
        outbound=DeliveryServices(crm_url=settings.crm_task_webhook_url),
        policies=policies_of(settings),
        unsubscribe_link=unsubscribe_links(settings, secret),
        trigger_metrics=TriggerMetrics(resources.registry),
        catalog_refresh_seconds=settings.catalog_refresh_seconds,
        tracing=resources.tracing,
        bus=resources.bus,
        sessions=resources.sessions,
        clock=resources.clock,
        group_id=settings.group_id,
        metrics=consumer_metrics,
        polling=Polling.of(settings),
        on_applied=queued.set,
    )
    return [
        Worker("messaging-contacts", contacts.run),
        Worker("messaging-triggers", triggers.run),
        *delivery_background(settings, resources, consumer_metrics=consumer_metrics, queued=queued),
    ]


async def publish_reference_playbooks(resources: Resources, workspace: str) -> bool:
    """Publish the reference playbooks to ``workspace`` (embedded mode: the demo workspace,
    on first start) unless it has playbooks of its own; whether it published."""
    async with resources.sessions() as session:
        found = await find_workspace(session, workspace)
        if found is None:
            return False
        existing, _ = await list_playbooks(session, found.id, limit=1)
        if existing:
            return False
        for source in sorted(REFERENCE_PLAYBOOKS.glob("*.yaml")):
            await publish(session, found.id, source.name, source.read_text(), clock=resources.clock)
        await session.commit()
    return True


async def run_messaging(runtime: RuntimeSettings, *, simulation: RouterOnBus) -> None:
    """``milepost messaging``: learn contacts, plan outreach from triggers, serve the API
    with the draft ``simulation`` (it plans with this service's playbooks and policies),
    health and metrics. Migrates only SQLite; PostgreSQL is migrated by the deployment."""
    async with service_resources(runtime, service="milepost-messaging") as resources:
        app = create_http_app(
            "Milepost messaging",
            "Contacts, playbooks, template previews, unsubscribe links and plans; deliveries, "
            "tasks, subscriptions and the in-app feed; draft growth paths simulated with "
            "their outreach under `/api/simulation/`.",
            resources,
            max_body_bytes=runtime.max_request_bytes,
        )
        background = mount_messaging(app, MessagingSettings(), resources, simulation=simulation)
        await serve(app, host=runtime.host, port=runtime.port, background=background)
