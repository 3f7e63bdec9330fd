"""The contacts consumer on the in-memory bus and Kafka, with SQLite and PostgreSQL: the
directory learns from identify, group and CRM events; malformed records go to the
dead-letter topic; the directory pages by account and role."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.contacts import repository, service
from services.messaging.contacts.consumer import ContactsConsumer
from services.messaging.deliveries.models import DeliveryRow
from services.messaging.processing.consumer import ConsumerMetrics
from services.messaging.tasks import service as tasks
from services.messaging.tasks.planned import PlannedTask
from shared.bus import Bus, Consumer, OutgoingRecord
from shared.clock import FrozenClock
from shared.consuming.models import SeenEventRow
from shared.consuming.offsets import applied_offsets
from shared.contracts import EventEnvelope, EventType, Topic
from shared.contracts.events import event_id_for
from shared.contracts.topics import DeadLetter
from tests.services.messaging.support import T0, applies_of

CRM = "http://crm.example.com/hooks/tasks"


class Directory:
    def __init__(self, bus: Bus, sessions: async_sessionmaker[AsyncSession]) -> None:
        tag = uuid.uuid4().hex[:10]
        self.bus, self.sessions = bus, sessions
        self.workspace, self.group = f"ws{tag}", f"contacts-{tag}"

    def worker(self) -> ContactsConsumer:
        return ContactsConsumer(
            bus=self.bus,
            sessions=self.sessions,
            clock=FrozenClock(T0),
            group_id=self.group,
            metrics=ConsumerMetrics(CollectorRegistry()),
            crm_url=CRM,
        )

    def event(self, message: str, type: EventType, **fields: Any) -> OutgoingRecord:
        values: dict[str, Any] = {"account_id": "acme", "user_id": "u1", **fields}
        envelope = EventEnvelope(
            event_id=event_id_for(self.workspace, message),
            workspace_id=self.workspace,
            message_id=message,
            type=type,
            timestamp=T0,
            received_at=T0,
            source="segment",
            **values,
        )
        return OutgoingRecord(
            Topic.EVENTS, envelope.key.encode(), envelope.model_dump_json().encode()
        )

    async def run(self) -> ContactsConsumer:
        worker, consumer = (
            self.worker(),
            await self.bus.subscribe([Topic.EVENTS], group_id=self.group),
        )
        try:
            await until_idle(worker, consumer)
        finally:
            await consumer.close()
        return worker


async def until_idle(worker: ContactsConsumer, consumer: Consumer) -> None:
    for _ in range(200):
        await worker.step(consumer)
        owned = consumer.assignment()
        if not owned:
            continue
        ends = await worker.bus.end_offsets(sorted(owned, key=str))
        if all(worker.applied.get(tp, 0) >= end for tp, end in ends.items() if end):
            return
    raise AssertionError("the contacts consumer did not catch up")


@pytest.fixture
def directory(bus: Bus, sessions: async_sessionmaker[AsyncSession]) -> Directory:
    return Directory(bus, sessions)


async def test_the_directory_learns_people_roles_and_owners(directory: Directory) -> None:
    await directory.bus.publish(
        [
            directory.event("m1", EventType.GROUP, context={"traits": {"roles": ["admin"]}}),
            directory.event(
                "m2",
                EventType.IDENTIFY,
                traits={
                    "email": "li.wei@acme.example",
                    "locale": "zh-CN",
                    "timezone": "Asia/Shanghai",
                },
            ),
            directory.event(
                "m3",
                EventType.CRM,
                event="milepost.crm.contact.upserted",
                user_id="c-2",
                properties={
                    "account_id": "acme",
                    "contact_id": "c-2",
                    "roles": ["decision_maker", "influencer"],
                    "email": "boss@acme.example",
                },
            ),
            directory.event(
                "m4",
                EventType.CRM,
                event="milepost.crm.account.upserted",
                user_id=None,
                properties={
                    "account_id": "acme",
                    "owner_email": "csm@milepost.example",
                    "owner_name": "Zhao",
                },
            ),
            directory.event("m5", EventType.TRACK, event="Order Completed"),
        ]
    )
    await directory.run()

    async with directory.sessions() as session:
        found = await repository.of_accounts(
            session, [(directory.workspace, "acme"), (directory.workspace, "nobody")]
        )
        people = found[(directory.workspace, "acme")]
        assert found[(directory.workspace, "nobody")] == []
        admins, _ = await service.list_contacts(session, directory.workspace, role="admin")
        page, cursor = await service.list_contacts(
            session, directory.workspace, account_id="acme", limit=1
        )
        rest, end = await service.list_contacts(
            session, directory.workspace, account_id="acme", cursor=cursor
        )
    by_id = {c.contact_id: c for c in people}
    assert set(by_id) == {"u1", "c-2", "owner:csm@milepost.example"}
    admin = by_id["u1"]
    assert (admin.roles, admin.email, admin.locale, admin.timezone) == (
        frozenset({"admin"}),
        "li.wei@acme.example",
        "zh-CN",
        "Asia/Shanghai",
    )
    assert by_id["c-2"].roles == {"decision_maker", "influencer"}
    assert by_id["owner:csm@milepost.example"].is_account_owner
    assert [c.contact_id for c in admins] == ["u1"]
    assert [c.contact_id for c in page + rest] == ["c-2", "u1"]
    assert end is None


async def test_an_owner_learned_takes_the_account_s_ownerless_open_task(
    directory: Directory,
) -> None:
    async with directory.sessions() as session:
        planned = await tasks.create_task(
            session,
            PlannedTask(
                workspace_id=directory.workspace,
                account_id="acme",
                trigger_id=f"t-{directory.group}",
                playbook_id="renewal",
                playbook_version=1,
                step_id="renewal/visit",
                owner_contact_id=None,
                title="Visit Acme",
                description="",
                priority=30,
                due_at=T0,
                escalate_at=None,
                escalate_to=None,
                planned_at=T0,
            ),
            crm_url=None,
        )
        await session.commit()
    owner = {"account_id": "acme", "owner_email": "csm@milepost.example"}
    await directory.bus.publish(
        [
            directory.event(
                "m1",
                EventType.CRM,
                event="milepost.crm.account.upserted",
                user_id=None,
                properties=owner,
            )
        ]
    )
    await directory.run()
    async with directory.sessions() as session:
        task = await tasks.get_task(session, directory.workspace, planned.task_id)
        pushed = await session.scalar(
            select(DeliveryRow.target).where(DeliveryRow.step_id == f"task:{task.task_id}:2")
        )
    assert (task.owner_contact_id, task.version) == ("owner:csm@milepost.example", 2)
    assert pushed == {"url": CRM, "event_type": "task.updated"}


async def test_a_malformed_event_goes_to_the_dead_letter_topic(directory: Directory) -> None:
    await directory.bus.publish(
        [
            OutgoingRecord(Topic.EVENTS, b"x", b"not json"),
            directory.event("m1", EventType.IDENTIFY, traits={"email": "a@acme.example"}),
        ]
    )
    await directory.run()
    reader = await directory.bus.subscribe([Topic.EVENTS_DLQ], group_id=f"r-{uuid.uuid4().hex}")
    letters: list[DeadLetter] = []
    for _ in range(50):
        letters += [
            DeadLetter.model_validate_json(r.value) for r in await reader.poll(timeout_ms=200)
        ]
        if letters:
            break
    await reader.close()
    mine = [letter for letter in letters if letter.consumer_group == directory.group]
    assert len(mine) == 1
    assert mine[0].reason.startswith("not a valid event envelope")
    async with directory.sessions() as session:
        contact = await service.get_contact(session, directory.workspace, "u1")
    assert contact.email == "a@acme.example"


async def test_a_restarted_consumer_resumes_after_what_it_applied_and_keeps_an_opt_out(
    directory: Directory,
) -> None:
    await directory.bus.publish(
        [directory.event("m1", EventType.IDENTIFY, traits={"name": "First"})]
    )
    await directory.run()
    async with directory.sessions() as session:
        await service.set_consent(session, directory.workspace, "u1", "tips", allowed=False, now=T0)
        await session.commit()
    await directory.bus.publish(
        [directory.event("m2", EventType.IDENTIFY, traits={"name": "Second"})]
    )
    await directory.run()
    async with directory.sessions() as session:
        contact = await service.get_contact(session, directory.workspace, "u1")
    assert (contact.name, contact.consent) == ("Second", {"tips": False})


async def test_an_event_published_again_later_does_not_bring_back_what_it_stated(
    directory: Directory,
) -> None:
    """A client's retry after a 503 whose event reached the topic anyway arrives after a
    newer identify call: applied once, it leaves the newer address in place."""
    first = directory.event("m1", EventType.IDENTIFY, traits={"email": "old@acme.example"})
    newer = directory.event("m2", EventType.IDENTIFY, traits={"email": "new@acme.example"})
    await directory.bus.publish([first, newer])
    await directory.run()
    await directory.bus.publish([first])
    await directory.run()

    async with directory.sessions() as session:
        contact = await service.get_contact(session, directory.workspace, "u1")
    assert contact.email == "new@acme.example"


async def test_only_events_that_state_facts_are_remembered_as_seen(
    directory: Directory,
) -> None:
    await directory.bus.publish(
        [
            directory.event("m1", EventType.TRACK, event="Report Created"),
            directory.event("m2", EventType.IDENTIFY, traits={"email": "ann@acme.example"}),
        ]
    )
    await directory.run()

    async with directory.sessions() as session:
        seen = await session.scalars(
            select(SeenEventRow.event_id).where(SeenEventRow.consumer_group == directory.group)
        )
        assert list(seen) == [event_id_for(directory.workspace, "m2")]


async def test_a_batch_of_events_that_state_nothing_writes_nothing_until_the_stop(
    directory: Directory, monkeypatch: pytest.MonkeyPatch
) -> None:
    await directory.bus.publish(
        [directory.event(f"m{n}", EventType.TRACK, event="Report Created") for n in range(3)]
    )
    worker = directory.worker()
    learned = applies_of(worker, monkeypatch)
    consumer = await directory.bus.subscribe([Topic.EVENTS], group_id=directory.group)
    await until_idle(worker, consumer)
    owned = consumer.assignment()
    await worker.stream.leave(consumer)

    assert learned == []
    async with directory.sessions() as session:  # the offsets stored at the stop
        stored, _ = await applied_offsets(session, directory.group, owned)
    assert sum(stored.values()) == 3
