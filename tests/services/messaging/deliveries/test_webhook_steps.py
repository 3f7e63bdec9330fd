"""A playbook step on the webhook channel, planned and sent: signed per Standard Webhooks
to the configured default URL when the step names none."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from services.messaging.channels.registry import open_channels
from services.messaging.playbooks.files import PublishedPlaybook
from services.messaging.playbooks.service import read_playbook
from services.messaging.processing.planning import plan_trigger
from services.messaging.settings import MessagingSettings
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from tests.services.messaging.deliveries.support import dispatcher, planned
from tests.services.messaging.deliveries.test_dispatcher import queue
from tests.services.messaging.http_sink import Answer, running_sink
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


async def test_a_retried_webhook_sends_the_same_body_and_webhook_id(own_sessions: Sessions) -> None:
    planned_at = NOW - timedelta(minutes=1)
    (delivery_id,) = await queue(
        own_sessions,
        planned(
            playbook_id="hooks",
            channel="webhook",
            target={},
            planned_at=planned_at,
            not_before=planned_at,
        ),
    )
    clock = FrozenClock(NOW)
    async with running_sink() as sink:
        sink.answer(Answer(status=503))
        settings = MessagingSettings(webhook_url=sink.url, allow_loopback_targets=True)
        async with open_channels(settings, own_sessions, clock) as channels:
            worker = dispatcher(own_sessions, InMemoryBus(), clock, channels)
            assert await worker.step() == 1
            clock.advance(timedelta(minutes=30))  # past the retry's wait
            assert await worker.step() == 1

    first, second = sink.received
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery_id
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    assert json.loads(second.body)["timestamp"] == planned_at.isoformat()
    assert worker.policy.default_secret is not None
    verify = Webhook(worker.policy.default_secret)  # (on real time: the first attempt's)
    assert verify.verify(first.body, first.headers)["data"]["delivery_id"] == delivery_id
