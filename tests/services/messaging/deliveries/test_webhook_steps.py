"""A playbook step on the webhook channel, planned and sent: signed per Standard Webhooks
to the configured default URL when the step names none."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from services.messaging.channels.registry import open_channels
from services.messaging.playbooks.service import PublishedPlaybook, read_playbook
from services.messaging.processing.planning import plan_trigger
from services.messaging.settings import MessagingSettings
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from tests.services.messaging.deliveries.support import dispatcher, planned
from tests.services.messaging.deliveries.test_dispatcher import queue
from tests.services.messaging.http_sink import running_sink
from tests.services.messaging.support import POLICIES, WORKSPACE, person, trigger

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime.now(UTC).replace(microsecond=0)
"""Real time: the Standard Webhooks library checks the timestamp against it."""
HOOKS = PublishedPlaybook(
    WORKSPACE,
    "hooks",
    1,
    read_playbook(
        "hooks.yaml",
        """\
id: hooks
name: Hooks
rules:
  - id: overdue
    steps:
      - {id: push, channels: [webhook], template: note, category: onboarding}
templates:
  note:
    subject: {en: "Overdue"}
    body: {en: "{{ trigger.reason }}"}
""",
    ),
)


async def test_a_webhook_step_is_signed_to_the_configured_url(own_sessions: Sessions) -> None:
    [plan] = plan_trigger(
        trigger(at=NOW),
        [HOOKS],
        [person("c-admin", "admin", email=None)],
        policies=POLICIES,
        now=NOW,
        unsubscribe_url=lambda contact, category: None,
    ).messages
    assert (plan.channel, plan.target) == ("webhook", {})
    (delivery_id,) = await queue(
        own_sessions,
        planned(
            playbook_id="hooks",
            step_id=plan.step_id,
            channel="webhook",
            target=plan.target,
            subject=plan.subject,
            body=plan.body,
            planned_at=NOW,
            not_before=NOW,
        ),
    )
    clock = FrozenClock(NOW)
    async with running_sink() as sink:
        settings = MessagingSettings(
            webhook_url=f"{sink.url}/milepost", allow_loopback_targets=True
        )
        async with open_channels(settings, own_sessions, clock) as channels:
            worker = dispatcher(own_sessions, InMemoryBus(), clock, channels)
            assert await worker.step() == 1

    (request,) = sink.received
    assert request.path == "/milepost"
    assert worker.policy.default_secret is not None
    payload = Webhook(worker.policy.default_secret).verify(request.body, request.headers)
    assert payload["type"] == "message.created"
    assert payload["data"]["delivery_id"] == delivery_id
    assert (payload["data"]["subject"], payload["data"]["body"]) == (
        "Overdue",
        "complete_profile: overdue",
    )
