"""An email that bounces: the contact's address is marked bounced and the message follows
up on the playbook step's next channel that reaches the contact, once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.channels.base import Channel
from services.messaging.contacts import repository as contacts
from services.messaging.contacts.directory import Contact
from services.messaging.contacts.service import get_contact
from services.messaging.deliveries import repository
from services.messaging.deliveries.dispatcher import Dispatcher, follow_up
from services.messaging.deliveries.message import Message
from services.messaging.deliveries.models import DeliveryRow
from services.messaging.deliveries.service import list_deliveries, queue_delivery
from services.messaging.playbooks.service import load_catalog, publish, read_playbook
from services.messaging.processing.planning import plan_trigger
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from tests.services.messaging.deliveries.support import T0, ScriptedChannel, dispatcher, planned
from tests.services.messaging.smtp_server import Handler, email_channel, running_smtp
from tests.services.messaging.support import POLICIES, trigger

Sessions = async_sessionmaker[AsyncSession]
PLAYBOOK = """\
id: onboarding
name: Onboarding
rules:
  - id: overdue
    match: {kinds: [node_overdue]}
    steps:
      - id: nudge
        channels: [email, feishu, in_app]
        template: nudge
templates:
  nudge:
    body: {en: "Two steps left."}
"""
EMAIL_ONLY = PLAYBOOK.replace("[email, feishu, in_app]", "[email]")
ADA = Contact(
    "ws_test",
    "c-admin",
    account_id="acme",
    email="ada@acme.example",
    chat_app_ids={"feishu": "ou_ada"},
    roles=frozenset({"admin"}),
)


@pytest.fixture
def smtp() -> Iterator[tuple[Handler, int]]:
    with running_smtp() as running:
        yield running


async def given(
    sessions: Sessions, *, playbook: str = PLAYBOOK, contact: Contact | None = ADA
) -> str:
    """The published playbook, the contact and an email delivery of its step; its id."""
    async with sessions() as session:
        await publish(session, "ws_test", "onboarding.yaml", playbook, clock=FrozenClock(T0))
        if contact is not None:
            await contacts.save(session, [contact], now=T0)
        queued = await queue_delivery(
            session,
            planned(channel="email", target={"email": "ada@acme.example"}, priority=2),
        )
        await session.commit()
    return queued.delivery_id


def bouncing(sessions: Sessions, port: int, feishu: ScriptedChannel) -> Dispatcher:
    channels: dict[str, Channel] = {"email": email_channel(port), "feishu": feishu}
    return dispatcher(sessions, InMemoryBus(), FrozenClock(T0), channels)


async def deliveries(sessions: Sessions) -> dict[str, DeliveryRow]:
    async with sessions() as session:
        page = await list_deliveries(session, "ws_test")
    return {row.channel or "": row for row in page.items}


async def test_a_refused_email_marks_the_contact_and_follows_up_on_the_next_channel(
    own_sessions: Sessions, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    handler.rcpt_answer = "550 5.1.1 No such user"
    email_id = await given(own_sessions)
    feishu = ScriptedChannel()
    worker = bouncing(own_sessions, port, feishu)

    assert await worker.step() == 1

    async with own_sessions() as session:
        assert (await get_contact(session, "ws_test", "c-admin")).bounced == {"email"}
    found = await deliveries(own_sessions)
    email, chat = found["email"], found["feishu"]
    assert email.delivery_id == email_id
    assert email.status == "failed"
    assert email.reason is not None
    assert email.reason.startswith("recipient refused (bounce): ada@acme.example: 550")
    assert email.reason.endswith(f"; followed up on feishu ({chat.delivery_id})")
    assert (chat.status, chat.due_at, chat.step_id, chat.target) == (
        "queued",
        T0,
        "onboarding/nudge@feishu",
        {"user_id": "ou_ada"},
    )
    assert (chat.subject, chat.body, chat.category, chat.priority) == (
        email.subject,
        email.body,
        email.category,
        2,
    )
    assert (chat.playbook_id, chat.playbook_version) == ("onboarding", 1)

    assert await worker.step() == 1
    (sent,) = feishu.sent
    assert (sent.delivery_id, sent.body, sent.target) == (
        chat.delivery_id,
        "Two steps left.",
        {"user_id": "ou_ada"},
    )
    assert (await deliveries(own_sessions))["feishu"].status == "sent"


async def test_later_plans_for_a_bounced_contact_skip_email(
    own_sessions: Sessions, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    handler.rcpt_answer = "550 5.1.1 No such user"
    await given(own_sessions)
    await bouncing(own_sessions, port, ScriptedChannel()).step()

    async with own_sessions() as session:
        people = (await contacts.of_accounts(session, [("ws_test", "acme")]))[("ws_test", "acme")]
        catalog = await load_catalog(session)
    [message] = plan_trigger(
        trigger(trigger_id="t-2", at=T0),
        catalog["ws_test"],
        people,
        policies=POLICIES,
        now=T0,
        unsubscribe_url=lambda contact, category: None,
    ).messages
    assert (message.contact_id, message.channel, message.target) == (
        "c-admin",
        "feishu",
        {"user_id": "ou_ada"},
    )


async def test_a_deferred_email_is_no_bounce(
    own_sessions: Sessions, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    handler.rcpt_answer = "451 4.7.1 Try again later"
    await given(own_sessions)

    await bouncing(own_sessions, port, ScriptedChannel()).step()

    async with own_sessions() as session:
        assert (await get_contact(session, "ws_test", "c-admin")).bounced == frozenset()
    found = await deliveries(own_sessions)
    assert list(found) == ["email"]
    assert found["email"].status == "retrying"


async def test_recording_a_bounce_again_queues_the_follow_up_once(
    own_sessions: Sessions, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    handler.rcpt_answer = "550 5.1.1 No such user"
    await given(own_sessions)
    worker = bouncing(own_sessions, port, ScriptedChannel())
    (claimed,), _ = await worker.claim(T0)
    attempted = await worker.attempt(claimed)

    for again in (attempted, replace(attempted, message=with_attempt(claimed, 2))):
        async with own_sessions() as session:
            await worker.record(session, [again])
            await session.commit()

    async with own_sessions() as session:
        page = await list_deliveries(session, "ws_test")
    assert sorted(row.step_id for row in page.items) == [
        "onboarding/nudge",
        "onboarding/nudge@feishu",
    ]


def with_attempt(claimed: Message, attempt: int) -> Message:
    """The same delivery claimed again after its lease ended (another dispatcher's send)."""
    return replace(claimed, attempt=attempt)


async def test_without_another_channel_the_reason_says_so(
    own_sessions: Sessions, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    handler.rcpt_answer = "550 5.1.1 No such user"
    await given(own_sessions, playbook=EMAIL_ONLY)

    await bouncing(own_sessions, port, ScriptedChannel()).step()

    found = await deliveries(own_sessions)
    assert list(found) == ["email"]
    assert (found["email"].reason or "").endswith("; no other channel reaches the contact")
    async with own_sessions() as session:
        assert (await get_contact(session, "ws_test", "c-admin")).bounced == {"email"}


async def test_a_bounce_for_a_deleted_contact_records_the_failure_only(
    own_sessions: Sessions, smtp: tuple[Handler, int]
) -> None:
    handler, port = smtp
    handler.rcpt_answer = "550 5.1.1 No such user"
    email_id = await given(own_sessions, contact=None)

    await bouncing(own_sessions, port, ScriptedChannel()).step()

    async with own_sessions() as session:
        row = await repository.get(session, "ws_test", email_id)
        assert row is not None
        assert row.status == "failed"
        assert (row.reason or "").endswith("; the contact is no longer in the directory")
        assert await contacts.row(session, "ws_test", "c-admin") is None
    assert list(await deliveries(own_sessions)) == ["email"]


def test_a_follow_up_skips_bounced_channels_and_keys_on_the_planned_step() -> None:
    step = read_playbook("onboarding.yaml", PLAYBOOK).rules[0].steps[0]
    bounced = replace(ADA, bounced=frozenset({"email", "feishu"}))
    claimed = Message(
        delivery_id="dlv_x",
        workspace_id="ws_test",
        account_id="acme",
        trigger_id="t-1",
        contact_id="c-admin",
        channel="feishu",
        target={"user_id": "ou_ada"},
        subject="Finish your profile",
        body="Two steps left.",
        category="onboarding",
        attempt=1,
        planned_at=T0,
        not_before=T0,
        step_id="onboarding/nudge@feishu",
        priority=1,
        playbook_id="onboarding",
        playbook_version=1,
        trace={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    )
    later = T0 + timedelta(minutes=5)

    planned_again = follow_up(claimed, step, bounced, later)

    assert planned_again is not None
    assert (planned_again.channel, planned_again.target, planned_again.step_id) == (
        "in_app",
        {"user_id": "c-admin"},
        "onboarding/nudge@in_app",
    )
    assert (planned_again.not_before, planned_again.status) == (later, "queued")
    assert planned_again.trace == claimed.trace  # the follow-up's send joins the same trace
    assert (
        follow_up(
            claimed, step, replace(bounced, bounced=frozenset({"email", "feishu", "in_app"})), later
        )
        is None
    )
