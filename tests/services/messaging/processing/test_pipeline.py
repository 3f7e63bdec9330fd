"""From product events to planned outreach through the real engine, on the in-memory bus
and SQLite: a merchant joins with its admin, the platform-merchant path enrols it, and the
reference playbook welcomes the admin by email in their locale; the engine's triggers are
what the trigger worker reads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from sqlalchemy import select

from services.messaging.app import publish_reference_playbooks
from services.messaging.contacts.consumer import ContactsConsumer
from services.messaging.deliveries.models import DeliveryRow
from services.messaging.playbooks.service import load_catalog as load_playbooks
from services.messaging.processing.consumer import ConsumerMetrics
from services.messaging.processing.outbound import DeliveryServices
from services.messaging.processing.worker import TriggerMetrics, TriggerWorker
from services.migrations import upgrade_to_head
from services.node_engine.paths.service import REFERENCE_PATHS, load_catalog, publish
from services.node_engine.processing.worker import INPUT_TOPICS, EngineMetrics, EngineWorker
from services.node_engine.settings import EngineSettings
from shared.attribution.stage import INPUT_TOPICS as ATTRIBUTION_TOPICS
from shared.attribution.stage import AttributionStage, attribution_stage
from shared.bus import Consumer, OutgoingRecord
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.contracts import EventEnvelope, EventType, Topic
from shared.contracts.events import event_id_for
from shared.db import create_engine, create_session_factory
from shared.runtime import Resources
from shared.tenancy.service import create_workspace
from tests.services.messaging.support import POLICIES, T0


async def drain(
    worker: ContactsConsumer | AttributionStage | EngineWorker | TriggerWorker, consumer: Consumer
) -> None:
    """Step until every owned partition is applied up to its end."""
    for _ in range(100):
        await worker.step(consumer)
        owned = consumer.assignment()
        ends = await worker.bus.end_offsets(sorted(owned, key=str)) if owned else {}
        if owned and all(worker.applied.get(tp, 0) >= end for tp, end in ends.items() if end):
            return
    raise AssertionError("the consumer did not catch up")


async def test_a_merchant_joining_welcomes_its_admin(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await upgrade_to_head(engine)
    clock = FrozenClock(T0)
    resources = Resources(
        InMemoryBus(), engine, create_session_factory(engine), clock, CollectorRegistry()
    )
    async with resources.sessions() as session:
        workspace = (await create_workspace(session, "demo", clock=clock)).workspace_id
        await publish(
            session,
            workspace,
            "platform-merchant.yaml",
            (REFERENCE_PATHS / "platform-merchant.yaml").read_text(),
            clock=clock,
        )
        await session.commit()
    await publish_reference_playbooks(resources, "demo")

    def event(message: str, type: EventType, **fields: object) -> OutgoingRecord:
        envelope = EventEnvelope(
            event_id=event_id_for(workspace, message),
            workspace_id=workspace,
            message_id=message,
            type=type,
            account_id="acme",
            user_id="u1",
            timestamp=clock.now(),
            received_at=clock.now(),
            source="segment",
            **fields,  # type: ignore[arg-type]
        )
        return OutgoingRecord(
            Topic.EVENTS, envelope.key.encode(), envelope.model_dump_json().encode()
        )

    bus, registry = resources.bus, CollectorRegistry()
    contacts = ContactsConsumer(
        bus=bus,
        sessions=resources.sessions,
        clock=clock,
        group_id="contacts",
        metrics=ConsumerMetrics(registry),
    )
    stage = attribution_stage(resources)
    engine_worker = EngineWorker(
        bus=bus,
        sessions=resources.sessions,
        clock=clock,
        settings=EngineSettings(
            group_id="engine", catalog_refresh_seconds=0.001, timer_interval_ms=10
        ),
        load_catalog=load_catalog,
        metrics=EngineMetrics(CollectorRegistry()),
    )
    triggers = TriggerWorker(
        load_catalog=load_playbooks,
        outbound=DeliveryServices(),
        policies=POLICIES,
        unsubscribe_link=lambda _contact, _category, _now: None,
        trigger_metrics=TriggerMetrics(registry),
        catalog_refresh_seconds=0.001,
        bus=bus,
        sessions=resources.sessions,
        clock=clock,
        group_id="messaging",
        metrics=ConsumerMetrics(CollectorRegistry()),
    )
    await bus.publish(
        [
            event(
                "m1",
                EventType.IDENTIFY,
                traits={"email": "admin@acme.example", "locale": "zh-CN", "roles": ["admin"]},
            ),
            event("m2", EventType.GROUP, traits={"business_type": "platform"}),
        ]
    )
    contacts_consumer = await bus.subscribe([Topic.EVENTS], group_id="contacts")
    stage_consumer = await bus.subscribe(list(ATTRIBUTION_TOPICS), group_id=stage.stream.group_id)
    engine_consumer = await bus.subscribe(list(INPUT_TOPICS), group_id="engine")
    triggers_consumer = await bus.subscribe([Topic.TRIGGERS], group_id="messaging")
    await drain(contacts, contacts_consumer)
    await drain(stage, stage_consumer)
    await drain(engine_worker, engine_consumer)
    clock.advance(timedelta(seconds=1))
    await drain(triggers, triggers_consumer)
    for consumer in (contacts_consumer, stage_consumer, engine_consumer, triggers_consumer):
        await consumer.close()

    async with resources.sessions() as session:
        deliveries = (await session.scalars(select(DeliveryRow))).all()
    welcome = [d for d in deliveries if d.step_id == "platform-merchant-outreach/welcome_admin"]
    assert len(welcome) == 1
    assert (welcome[0].channel, welcome[0].contact_id, welcome[0].status) == (
        "email",
        "u1",
        "queued",
    )
    assert welcome[0].subject.startswith("欢迎入驻")
    assert (
        registry.get_sample_value("milepost_messaging_triggers_total", {"outcome": "planned"}) == 1
    )
    await engine.dispose()
