"""The trigger worker on the in-memory bus and on Kafka, with SQLite and PostgreSQL:
triggers become deliveries and tasks through the reference playbooks, a replayed trigger
(or a crash before the offset commit) plans nothing twice, malformed records go to the
dead-letter topic, and budgets apply across triggers."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.contacts import service as contacts
from services.messaging.contacts.directory import ContactFacts, OwnerFacts
from services.messaging.deliveries.models import DeliveryRow
from services.messaging.playbooks.service import REFERENCE_PLAYBOOKS, load_catalog, publish
from services.messaging.processing import repository as ledger
from services.messaging.processing import worker as worker_module
from services.messaging.processing.consumer import ConsumerMetrics, Polling
from services.messaging.processing.outbound import DeliveryServices
from services.messaging.processing.planning import Plans, Policies, plan_trigger
from services.messaging.processing.repository import Plan
from services.messaging.processing.worker import TriggerMetrics, TriggerWorker
from services.messaging.tasks.models import TaskRow
from services.messaging.templates.limits import TemplateLimits
from services.messaging.templates.rendering import SAMPLE_CONTEXT
from shared.bus import Bus, Consumer, OutgoingRecord
from shared.clock import FrozenClock
from shared.consuming.offsets import applied_offsets
from shared.contracts import Topic
from shared.contracts.topics import DeadLetter
from shared.errors import CommitFailed
from shared.observability.tracing import Tracing
from tests.services.messaging.support import POLICIES, T0, applies_of, trigger_envelope


@dataclass
class Harness:
    bus: Bus
    sessions: async_sessionmaker[AsyncSession]
    workspace: str
    group: str
    clock: FrozenClock = field(default_factory=lambda: FrozenClock(T0))
    policies: Policies = POLICIES
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def worker(
        self, tracing: Tracing | None = None, on_applied: Callable[[], object] | None = None
    ) -> TriggerWorker:
        self.registry = CollectorRegistry()

        async def catalog(session: AsyncSession) -> Mapping[str, Any]:
            found = await load_catalog(session)
            return {self.workspace: found.get(self.workspace, ())}

        return TriggerWorker(
            load_catalog=catalog,
            outbound=DeliveryServices(),
            policies=self.policies,
            unsubscribe_link=lambda contact, category, _now: (
                f"https://u/{contact.contact_id}/{category}"
            ),
            trigger_metrics=TriggerMetrics(self.registry),
            catalog_refresh_seconds=0.001,
            tracing=tracing,
            bus=self.bus,
            sessions=self.sessions,
            clock=self.clock,
            group_id=self.group,
            metrics=ConsumerMetrics(self.registry),
            on_applied=on_applied,
        )

    async def subscribe(self) -> Consumer:
        return await self.bus.subscribe([Topic.TRIGGERS], group_id=self.group)

    async def publish_playbooks(self) -> None:
        async with self.sessions() as session:
            for source in sorted(REFERENCE_PLAYBOOKS.glob("*.yaml")):
                await publish(
                    session, self.workspace, source.name, source.read_text(), clock=self.clock
                )
            await session.commit()

    async def learn(self, *facts: ContactFacts | OwnerFacts) -> None:
        async with self.sessions() as session:
            await contacts.learn(session, list(facts), now=self.clock.now())
            await session.commit()

    def admin(self, contact_id: str = "a1", **fields: Any) -> ContactFacts:
        values: dict[str, Any] = {
            "account_id": "acme",
            "email": f"{contact_id}@acme.example",
            "roles": frozenset({"admin"}),
            "timezone": "Asia/Shanghai",
            **fields,
        }
        return ContactFacts(self.workspace, contact_id, **values)

    def decision_maker(self, contact_id: str = "b1") -> ContactFacts:
        return ContactFacts(
            self.workspace,
            contact_id,
            account_id="acme",
            email=f"{contact_id}@acme.example",
            roles=frozenset({"decision_maker"}),
        )

    def record(
        self,
        trigger_id: str = "t-1",
        headers: tuple[tuple[str, bytes], ...] = (),
        **changes: Any,
    ) -> OutgoingRecord:
        """A trigger record; its id is unique to this workspace, like the engine's."""
        envelope = trigger_envelope(
            workspace=self.workspace,
            at=self.clock.now(),
            trigger_id=f"{self.workspace}:{trigger_id}",
            **changes,
        )
        return OutgoingRecord(
            Topic.TRIGGERS, envelope.key.encode(), envelope.model_dump_json().encode(), headers
        )

    async def deliveries(self) -> list[DeliveryRow]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.workspace_id == self.workspace)
                .order_by(DeliveryRow.trigger_id, DeliveryRow.step_id, DeliveryRow.contact_id)
            )
            return list(rows)

    async def plans(self) -> list[Plan]:
        async with self.sessions() as session:
            found = await ledger.page(
                session, self.workspace, account_id=None, trigger_id=None, limit=10_000
            )
        return sorted(found, key=lambda p: (p.trigger_id, p.step_id, p.contact_id))

    async def dead_letters(self) -> list[DeadLetter]:
        consumer = await self.bus.subscribe(
            [Topic.TRIGGERS_DLQ], group_id=f"reader-{uuid.uuid4().hex}"
        )
        found: list[DeadLetter] = []
        try:
            for _ in range(50):
                records = await consumer.poll(max_records=500, timeout_ms=200)
                found += [DeadLetter.model_validate_json(r.value) for r in records]
                if found:
                    break
        finally:
            await consumer.close()
        return [letter for letter in found if letter.consumer_group == self.group]

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def harness(bus: Bus, sessions: async_sessionmaker[AsyncSession]) -> Harness:
    tag = uuid.uuid4().hex[:10]
    return Harness(bus, sessions, f"ws{tag}", f"messaging-{tag}")


async def run_until_idle(worker: TriggerWorker, consumer: Consumer, *, rounds: int = 200) -> None:
    """Step until every owned partition is applied up to its end."""
    for _ in range(rounds):
        await worker.step(consumer)
        owned = consumer.assignment()
        if not owned:
            continue
        ends = await worker.bus.end_offsets(sorted(owned, key=str))
        if all(worker.applied.get(tp, 0) >= end for tp, end in ends.items() if end):
            return
    raise AssertionError("the trigger worker did not catch up")


async def test_an_overdue_node_queues_a_reminder_for_the_admin(harness: Harness) -> None:
    await harness.publish_playbooks()
    await harness.learn(harness.admin(name="李伟", locale="zh-CN"))
    await harness.bus.publish([harness.record()])
    worker, consumer = harness.worker(), await harness.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()

    [delivery] = await harness.deliveries()
    assert (delivery.status, delivery.channel, delivery.contact_id) == ("queued", "email", "a1")
    assert delivery.step_id == "platform-merchant-outreach/overdue_reminder"
    assert delivery.target == {
        "email": "a1@acme.example",
        "name": "李伟",
        "unsubscribe_url": "https://u/a1/onboarding",
    }
    assert delivery.subject == "提醒：「complete_profile」已逾期"  # noqa: RUF001 (Chinese punctuation)
    assert delivery.not_before == T0
    [plan] = await harness.plans()
    assert (plan.status, plan.role) == ("queued", "admin")
    assert harness.metric("milepost_messaging_triggers_total", outcome="planned") == 1
    assert harness.metric("milepost_messaging_planned_deliveries_total", status="queued") == 1


async def test_fallbacks_timing_consent_and_tasks_in_one_pass(harness: Harness) -> None:
    await harness.publish_playbooks()
    await harness.learn(
        harness.decision_maker(),
        ContactFacts(
            harness.workspace,
            "e1",
            account_id="acme",
            roles=frozenset({"end_user"}),
            consent={"tips": False},
        ),
        OwnerFacts(harness.workspace, "acme", "csm@milepost.example", "Zhao"),
    )
    harness.clock.advance(timedelta(hours=13))  # 23:00 in the default zone, Shanghai
    await harness.bus.publish(
        [
            harness.record(trigger_id="t-overdue"),  # no admin: the decision maker
            harness.record(
                trigger_id="t-tip",
                kind="node_entered",
                stage="nurturing",
                node="first_order",
                roles=("admin", "end_user"),
            ),
            harness.record(
                trigger_id="t-task",
                kind="escalation",
                roles=("account_owner",),
                payload={"action": "task"},
            ),
        ]
    )
    worker, consumer = harness.worker(), await harness.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()

    found = {(d.trigger_id.partition(":")[2], d.contact_id): d for d in await harness.deliveries()}
    overdue = found[("t-overdue", "b1")]
    assert overdue.status == "deferred"
    assert overdue.not_before == T0 + timedelta(hours=23)  # 09:00 next day in Shanghai
    tip = found[("t-tip", "e1")]
    assert (tip.status, tip.reason) == ("suppressed", "consent: the contact opted out of tips")
    async with harness.sessions() as session:
        [task] = (
            await session.scalars(select(TaskRow).where(TaskRow.workspace_id == harness.workspace))
        ).all()
    assert task.owner_contact_id == "owner:csm@milepost.example"
    assert task.due_at == harness.clock.now() + timedelta(days=2)
    assert task.escalate_at == harness.clock.now() + timedelta(days=4)


async def test_a_replayed_trigger_plans_nothing_twice(harness: Harness) -> None:
    await harness.publish_playbooks()
    await harness.learn(harness.admin())
    await harness.bus.publish([harness.record(), harness.record()])
    worker, consumer = harness.worker(), await harness.subscribe()
    await run_until_idle(worker, consumer)
    await harness.bus.publish([harness.record()])
    await run_until_idle(worker, consumer)
    await consumer.close()

    assert len(await harness.deliveries()) == 1
    assert len(await harness.plans()) == 1


async def test_a_crash_before_the_offset_commit_sends_nothing_twice(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.publish_playbooks()
    await harness.learn(harness.admin(), harness.admin("a2"))
    await harness.bus.publish([harness.record(trigger_id=f"t{i}") for i in range(3)])
    crashing, consumer = harness.worker(), await harness.subscribe()

    async def lost_commit(_offsets: Any) -> None:
        raise CommitFailed("crash between the database commit and the offset commit")

    monkeypatch.setattr(consumer, "commit", lost_commit)
    for _ in range(5):
        await crashing.step(consumer)
    await consumer.close()
    planned = await harness.deliveries()
    assert len(planned) == 6

    survivor, consumer = harness.worker(), await harness.subscribe()
    await run_until_idle(survivor, consumer)
    await consumer.close()
    assert [(d.trigger_id, d.contact_id) for d in await harness.deliveries()] == [
        (d.trigger_id, d.contact_id) for d in planned
    ]
    assert (
        harness.metric("milepost_messaging_records_total", group=harness.group, outcome="replayed")
        == 3
    )


async def test_a_malformed_record_goes_to_the_dead_letter_topic_and_the_worker_goes_on(
    harness: Harness,
) -> None:
    await harness.publish_playbooks()
    await harness.learn(harness.admin())
    await harness.bus.publish(
        [
            OutgoingRecord(
                Topic.TRIGGERS, f"{harness.workspace}/a/acme".encode(), b'{"kind": "node_overdue"}'
            ),
            harness.record(),
        ]
    )
    worker, consumer = harness.worker(), await harness.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()

    [letter] = await harness.dead_letters()
    assert letter.topic == Topic.TRIGGERS
    assert letter.reason.startswith("not a valid trigger envelope: trigger_id: Field required")
    assert letter.value == '{"kind": "node_overdue"}'
    assert len(await harness.deliveries()) == 1
    assert harness.metric("milepost_messaging_dead_letters_total", topic=Topic.TRIGGERS_DLQ) == 1


async def test_budgets_hold_across_triggers_and_a_risk_message_beats_tips(harness: Harness) -> None:
    await harness.publish_playbooks()
    await harness.learn(
        ContactFacts(
            harness.workspace,
            "b1",
            account_id="acme",
            email="b1@acme.example",
            roles=frozenset({"decision_maker", "end_user"}),
            chat_app_ids={"feishu": "f-1"},
        )
    )
    tips = [
        harness.record(
            trigger_id=f"tip-{i}",
            kind="node_entered",
            stage="nurturing",
            node="first_order",
            roles=("end_user",),
        )
        for i in range(2)
    ]
    risk = harness.record(
        trigger_id="risk",
        kind="risk_changed",
        node=None,
        roles=("decision_maker",),
        payload={"to": "high"},
    )
    await harness.bus.publish([*tips, risk])
    worker, consumer = harness.worker(), await harness.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()

    statuses = {
        d.trigger_id.partition(":")[2]: (d.status, d.reason) for d in await harness.deliveries()
    }
    assert statuses["tip-0"] == ("queued", None)
    assert statuses["tip-1"][0] == "suppressed"
    assert (statuses["tip-1"][1] or "").startswith(
        "budget: 1 message of low priority or lower already planned for the contact"
    )
    assert statuses["risk"] == ("queued", None)


BROKEN = """\
id: broken
name: Broken
rules:
  - id: overdue
    match: {kinds: [node_overdue]}
    steps:
      - {id: bad, to: [admin], channels: [email], template: bad}
      - {id: good, to: [admin], channels: [email], template: good}
templates:
  bad: {body: {en: "{{ trigger.payload.missing.deeper }}"}}
  good: {body: {en: "fine"}}
"""


async def test_a_template_error_fails_that_delivery_and_the_worker_goes_on(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness.sessions() as session:
        await publish(session, harness.workspace, "broken.yaml", BROKEN, clock=harness.clock)
        await session.commit()
    await harness.learn(harness.admin())
    await harness.bus.publish([harness.record(trigger_id="t-1"), harness.record(trigger_id="t-2")])
    worker, consumer = harness.worker(), await harness.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()

    found = {(d.trigger_id.partition(":")[2], d.step_id): d for d in await harness.deliveries()}
    assert len(found) == 4
    for trigger_id in ("t-1", "t-2"):
        bad, good = found[(trigger_id, "broken/bad")], found[(trigger_id, "broken/good")]
        assert (bad.status, bad.due_at, bad.finished_at) == ("failed", None, T0)
        assert (bad.reason or "").startswith("template bad: UndefinedError:")
        assert (good.status, good.body) == ("queued", "fine")
    assert {p.status for p in await harness.plans() if p.step_id == "broken/bad"} == {"failed"}
    assert harness.metric("milepost_messaging_planned_deliveries_total", status="failed") == 2
    assert "a message failed to render" in caplog.text


MERCHANT = (REFERENCE_PLAYBOOKS / "platform-merchant.yaml").read_text()
REMINDER = '"Reminder: {{ trigger.node }} is overdue"'
LOOPS = "{% for i in range(9999) %}{% for j in range(9999) %}{% for k in range(9999) %}"


@pytest.mark.parametrize(
    ("costly", "limit"),
    [
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "depth"),
        (LOOPS + "{% endfor %}{% endfor %}{% endfor %}", "time"),
        ("{{ 'x' * 300000000 }}", "output"),
    ],
)
async def test_a_template_over_a_limit_fails_its_delivery_and_another_workspace_goes_on(
    harness: Harness, costly: str, limit: str
) -> None:
    harness.policies = replace(POLICIES, template_limits=TemplateLimits(time_seconds=0.3))
    other = Harness(harness.bus, harness.sessions, f"{harness.workspace}x", harness.group)
    async with harness.sessions() as session:
        bomb = MERCHANT.replace(REMINDER, json.dumps(costly))
        await publish(session, harness.workspace, "m.yaml", bomb, clock=harness.clock)
        await publish(session, other.workspace, "m.yaml", MERCHANT, clock=harness.clock)
        await session.commit()
    await harness.learn(harness.admin(), other.admin())
    await harness.bus.publish([harness.record(), other.record()])
    worker, consumer = harness.worker(), await harness.subscribe()
    worker.load_catalog = load_catalog  # both workspaces
    await run_until_idle(worker, consumer)
    await consumer.close()

    [failed] = await harness.deliveries()
    assert failed.status == "failed"
    assert f"template overdue_reminder: over the template {limit} limit" in (failed.reason or "")
    [sent] = await other.deliveries()
    assert (sent.status, sent.subject) == ("queued", "Reminder: complete_profile is overdue")


async def test_planning_runs_off_the_event_loop(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rendering takes up to the template time limit: the event loop (the API,
    ``/healthz``, the other workers) goes on meanwhile."""
    threads: list[int] = []

    def noting_the_thread(*args: Any, **kwargs: Any) -> Plans:
        threads.append(threading.get_ident())
        return plan_trigger(*args, **kwargs)

    monkeypatch.setattr(worker_module, "plan_trigger", noting_the_thread)
    await harness.publish_playbooks()
    await harness.learn(harness.admin())
    await harness.bus.publish([harness.record()])
    worker, consumer = harness.worker(), await harness.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()

    assert threads
    assert threading.get_ident() not in threads
    assert [d.status for d in await harness.deliveries()] == ["queued"]


async def test_planning_continues_the_trace_of_the_trigger_and_hands_it_to_the_send(
    harness: Harness,
) -> None:
    engine_trace, engine_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    exporter = InMemorySpanExporter()
    tracing = Tracing.exporting_to(exporter, service="messaging", batch=False)
    await harness.publish_playbooks()
    await harness.learn(harness.admin())
    traced = (("traceparent", f"00-{engine_trace}-{engine_span}-01".encode()),)
    await harness.bus.publish([harness.record("t-1", traced), harness.record("t-2")])
    worker, consumer = harness.worker(tracing), await harness.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()

    spans = {
        span.attributes["trigger.id"] if span.attributes else "": span
        for span in exporter.get_finished_spans()
        if span.name == "messaging plan trigger"
    }
    planned = spans[f"{harness.workspace}:t-1"]
    assert planned.parent is not None
    assert f"{planned.parent.span_id:016x}" == engine_span
    assert f"{planned.context.trace_id:032x}" == engine_trace
    by_trigger = {d.trigger_id.partition(":")[2]: d for d in await harness.deliveries()}
    carried = by_trigger["t-1"].trace["traceparent"]
    assert carried == f"00-{engine_trace}-{planned.context.span_id:016x}-01"
    untraced = spans[f"{harness.workspace}:t-2"]  # a trigger without context starts a trace
    assert untraced.parent is None
    assert by_trigger["t-2"].trace["traceparent"].split("-")[1] != engine_trace


async def test_each_committed_batch_wakes_the_dispatcher(harness: Harness) -> None:
    await harness.publish_playbooks()
    await harness.learn(harness.admin())
    await harness.bus.publish([harness.record()])
    committed: list[int] = []

    async def deliveries_now() -> None:
        committed.append(len(await harness.deliveries()))

    wakes: list[asyncio.Task[None]] = []
    worker = harness.worker(on_applied=lambda: wakes.append(asyncio.create_task(deliveries_now())))
    consumer = await harness.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()
    await asyncio.gather(*wakes)

    assert committed == [1]  # woken once, after the delivery was committed


async def test_a_batch_that_queued_nothing_wakes_no_one(harness: Harness) -> None:
    await harness.publish_playbooks()  # nobody to reach: no contacts learned
    await harness.bus.publish([harness.record()])
    wakes: list[int] = []
    worker = harness.worker(on_applied=lambda: wakes.append(1))
    consumer = await harness.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()

    assert await harness.deliveries() == []
    assert wakes == []


async def test_triggers_of_a_workspace_without_playbooks_are_unmatched_without_a_transaction(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.bus.publish([harness.record(f"t-{n}") for n in range(3)])
    wakes: list[int] = []
    worker = harness.worker(on_applied=lambda: wakes.append(1))
    applied = applies_of(worker, monkeypatch)
    consumer = await harness.subscribe()
    await run_until_idle(worker, consumer)
    owned = consumer.assignment()
    await worker.stream.leave(consumer)

    assert (applied, wakes) == ([], [])  # nothing planned, nobody woken
    assert harness.metric("milepost_messaging_triggers_total", outcome="unmatched") == 3
    assert (
        harness.metric("milepost_messaging_records_total", group=harness.group, outcome="applied")
        == 3
    )
    async with harness.sessions() as session:  # the offsets stored at the stop
        stored, _ = await applied_offsets(session, harness.group, owned)
    assert sum(stored.values()) == 3


async def test_without_tracing_deliveries_carry_no_context(harness: Harness) -> None:
    await harness.publish_playbooks()
    await harness.learn(harness.admin())
    traced = (("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),)
    await harness.bus.publish([harness.record("t-1", traced)])
    worker, consumer = harness.worker(), await harness.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()

    [delivery] = await harness.deliveries()
    assert delivery.trace == {}


async def test_the_lag_gauge_counts_what_the_group_has_not_handled(harness: Harness) -> None:
    await harness.publish_playbooks()
    await harness.bus.publish([harness.record(f"t-{n}") for n in range(3)])
    worker, consumer = harness.worker(), await harness.subscribe()
    worker.polling = Polling(max_batch_records=1)
    while not await worker.step(consumer):
        pass
    [partition] = {tp.partition for tp in worker.applied}
    labels = {"group": harness.group, "topic": Topic.TRIGGERS, "partition": str(partition)}
    assert harness.metric("milepost_messaging_consumer_lag", **labels) == 2
    worker.polling = Polling()
    worker.stream.lag.reported_at = float("-inf")
    await run_until_idle(worker, consumer)
    worker.stream.lag.reported_at = float("-inf")
    await worker.step(consumer)
    await consumer.close()
    assert harness.metric("milepost_messaging_consumer_lag", **labels) == 0


async def test_risk_alarms_in_a_row_bring_one_check_in_and_one_task_that_says_why(
    harness: Harness,
) -> None:
    """Three risk_changed triggers for one account within seconds: the reference check-in
    (cooldown P7D) goes once and the visit task is created once, its description naming the
    raised signal's sentence; the repeats are in the ledger as suppressed, with the reason."""
    await harness.publish_playbooks()
    await harness.learn(
        harness.decision_maker(),
        OwnerFacts(harness.workspace, "acme", "csm@milepost.example", "Zhao"),
    )
    reason = SAMPLE_CONTEXT["reasons"][0]
    sentence = reason["sentence"]
    alarms = []
    for i in range(3):
        harness.clock.advance(timedelta(seconds=5))
        alarms.append(
            harness.record(
                trigger_id=f"risk-{i}",
                kind="risk_changed",
                node=None,
                roles=("account_owner", "decision_maker"),
                reason="risk level medium -> high",
                payload={"from": "medium", "to": "high", "reasons": [reason]},
            )
        )
    await harness.bus.publish(alarms)
    worker, consumer = harness.worker(), await harness.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()

    emails = [(d.trigger_id.partition(":")[2], d.status) for d in await harness.deliveries()]
    assert emails == [("risk-0", "queued"), ("risk-1", "suppressed"), ("risk-2", "suppressed")]
    suppressed = [p for p in await harness.plans() if p.status == "suppressed"]
    assert len(suppressed) == 4  # two check-ins and two visit tasks
    assert all((p.reason or "").startswith("cooldown: ") for p in suppressed)
    async with harness.sessions() as session:
        [task] = (
            await session.scalars(select(TaskRow).where(TaskRow.workspace_id == harness.workspace))
        ).all()
    assert task.description == f"risk level medium -> high\n- {sentence}"
