"""The dispatcher on SQLite and PostgreSQL with a frozen clock: sending due deliveries,
retries with backoff, dead letters, rate limits, leases and concurrent dispatchers."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from datetime import timedelta

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.channels.base import SendResult
from services.messaging.deliveries import repository
from services.messaging.deliveries.dispatcher import (
    NO_WEBHOOK_SECRET,
    Dispatcher,
    dispatcher_for,
)
from services.messaging.deliveries.message import Message
from services.messaging.deliveries.models import DeliveryRow
from services.messaging.deliveries.service import queue_delivery
from services.messaging.settings import MessagingSettings
from shared.bus import Bus
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.contracts.topics import FailedDelivery, Topic
from shared.db import create_engine, create_session_factory
from shared.observability.tracing import Tracing
from tests.services.messaging.deliveries.support import (
    SCHEDULE,
    T0,
    ScriptedChannel,
    dispatcher,
    planned,
)

Sessions = async_sessionmaker[AsyncSession]


async def queue(sessions: Sessions, *plans: object) -> list[str]:
    async with sessions() as session:
        ids = [(await queue_delivery(session, plan)).delivery_id for plan in plans]  # type: ignore[arg-type]
        await session.commit()
    return ids


async def dead_letters(bus: Bus) -> list[FailedDelivery]:
    consumer = await bus.subscribe([Topic.DELIVERIES_DLQ], group_id=f"probe-{uuid.uuid4().hex}")
    found: list[FailedDelivery] = []
    try:
        for _ in range(50):
            records = await consumer.poll(timeout_ms=200)
            found += [FailedDelivery.model_validate_json(r.value) for r in records]
            if found:
                break
    finally:
        await consumer.close()
    return found


async def test_due_deliveries_are_sent_and_every_attempt_is_recorded(
    own_sessions: Sessions,
) -> None:
    clock, channel, registry = FrozenClock(T0), ScriptedChannel(), CollectorRegistry()
    now_id, later_id = await queue(
        own_sessions,
        planned(),
        planned(step_id="onboarding/later", status="deferred", not_before=T0 + timedelta(hours=1)),
    )
    worker = dispatcher(own_sessions, InMemoryBus(), clock, {"webhook": channel}, registry=registry)

    assert await worker.step() == 1
    assert [m.delivery_id for m in channel.sent] == [now_id]
    assert channel.sent[0].attempt == 1
    assert channel.sent[0].signing_secret is not None

    async with own_sessions() as session:
        row = await repository.get(session, "ws_test", now_id)
        assert row is not None
        assert (row.status, row.attempts, row.provider_message_id, row.due_at) == (
            "sent",
            1,
            "p-1",
            None,
        )
        history = await repository.attempts_of(session, now_id)
        assert [(a.attempt, a.status) for a in history] == [(0, "queued"), (1, "sent")]
        assert history[1].latency_ms is not None
    sent = registry.get_sample_value(
        "milepost_messaging_deliveries_total", {"channel": "webhook", "status": "sent"}
    )
    assert sent == 1.0

    clock.advance(timedelta(hours=1))
    assert await worker.step() == 1
    assert channel.sent[-1].delivery_id == later_id
    assert await worker.step() == 0


def woken_dispatcher(
    sessions: Sessions, idle_seconds: float = 3600
) -> tuple[asyncio.Event, Dispatcher]:
    """A dispatcher idle for ``idle_seconds`` (an hour) unless its event is set."""
    wake = asyncio.Event()
    worker = dispatcher(
        sessions,
        InMemoryBus(),
        FrozenClock(T0),
        {"webhook": ScriptedChannel()},
        idle_seconds=idle_seconds,
        wake=wake,
    )
    return wake, worker


async def test_an_idle_dispatcher_is_woken_when_deliveries_are_queued(
    own_sessions: Sessions,
) -> None:
    wake, worker = woken_dispatcher(own_sessions)
    waiting = asyncio.create_task(worker.idle())
    await asyncio.sleep(0)
    assert not waiting.done()
    wake.set()
    assert await waiting  # an hour's idle wait ends once woken (else the per-test timeout fails)
    assert not wake.is_set()  # cleared, so the next idle waits again


async def test_a_wait_no_wake_up_ended_claims_only_if_no_lane_did_for_the_interval(
    own_sessions: Sessions,
) -> None:
    await queue(own_sessions, planned())
    _, worker = woken_dispatcher(own_sessions, idle_seconds=0.01)
    assert await worker.idle() is False  # waited out: no wake-up
    worker.claimed_at = time.monotonic() + 3600  # a lane claimed within the interval
    assert await worker.step(claim=False) == 0
    assert await worker.step(claim=True) == 1  # a woken lane claims
    await queue(own_sessions, planned(step_id="onboarding/later"))
    worker.claimed_at = float("-inf")  # no lane claimed for the interval
    assert await worker.step(claim=False) == 1


async def test_a_wake_up_ends_one_idle_lanes_wait_and_the_next_one_the_next(
    own_sessions: Sessions,
) -> None:
    wake, worker = woken_dispatcher(own_sessions)
    lanes = {asyncio.create_task(worker.idle()) for _ in range(2)}
    await asyncio.sleep(0)
    wake.set()
    woken, waiting = await asyncio.wait(lanes, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.sleep(0.05)
    assert len(woken) == 1
    assert not any(lane.done() for lane in waiting)  # the other lane waits on
    wake.set()
    await asyncio.wait(waiting)  # else the per-test timeout fails


async def test_a_dispatcher_that_took_all_that_was_due_waits_before_claiming_again(
    own_sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    await queue(own_sessions, planned())
    wake, worker = woken_dispatcher(own_sessions)
    steps: asyncio.Queue[int] = asyncio.Queue()
    step = worker.step

    async def noted(*, claim: bool = True) -> int:
        handled = await step(claim=claim)
        steps.put_nowait(handled)
        return handled

    monkeypatch.setattr(worker, "step", noted)
    running = asyncio.create_task(worker.run())
    try:
        assert await steps.get() == 1
        await asyncio.sleep(0.2)
        assert steps.empty()  # one delivery of a batch of more: no second claim, it waits
        wake.set()
        assert await steps.get() == 0
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


class HeldChannel:
    """Holds every send until released, noting the deliveries in flight."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: asyncio.Queue[str] = asyncio.Queue()
        self.in_flight = 0
        self.most = 0

    async def send(self, message: Message) -> SendResult:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        self.started.put_nowait(message.delivery_id)
        await self.release.wait()
        self.in_flight -= 1
        return SendResult.sent(f"p-{message.delivery_id}")


async def test_lanes_claim_while_another_lane_sends_on_postgresql_only(
    own_sessions: Sessions,
) -> None:
    await queue(own_sessions, *(planned(contact_id=f"c-{n}") for n in range(2)))
    channel = HeldChannel()
    worker = dispatcher(
        own_sessions, InMemoryBus(), FrozenClock(T0), {"webhook": channel}, batch=1, lanes=2
    )
    async with own_sessions() as session:
        lanes = 2 if repository.claims_are_disjoint(session) else 1
    running = asyncio.create_task(worker.run())
    try:
        # the per-test timeout fails a lane that never sends
        started = {await channel.started.get() for _ in range(lanes)}
        await asyncio.sleep(0.2)
        assert channel.most == lanes  # a batch of one each: one send per lane in flight
        assert len(started) == lanes  # disjoint claims
        channel.release.set()
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_a_batch_of_outcomes_is_recorded_each_with_its_own_status(
    own_sessions: Sessions,
) -> None:
    clock = FrozenClock(T0)
    channel = ScriptedChannel(
        deque(
            [
                SendResult.sent("provider-1"),
                SendResult.retryable("503 from the receiver"),
                SendResult.permanent("410 gone"),
            ]
        )
    )
    ids = await queue(
        own_sessions, *(planned(contact_id=f"c-{n}", priority=3 - n) for n in range(3))
    )
    worker = dispatcher(own_sessions, InMemoryBus(), clock, {"webhook": channel})

    assert await worker.step() == 3

    async with own_sessions() as session:
        rows = [await repository.get(session, "ws_test", delivery_id) for delivery_id in ids]
        assert [
            (r.status, r.reason, r.provider_message_id, r.due_at, r.finished_at)
            for r in rows
            if r is not None
        ] == [
            ("sent", None, "provider-1", None, T0),
            ("retrying", "503 from the receiver", None, T0 + timedelta(seconds=SCHEDULE[0]), None),
            ("failed", "410 gone", None, None, T0),
        ]
        histories = [await repository.attempts_of(session, delivery_id) for delivery_id in ids]
        assert [[a.status for a in history] for history in histories] == [
            ["queued", "sent"],
            ["queued", "failed"],
            ["queued", "failed"],
        ]


async def test_retries_back_off_then_the_last_failure_is_dead_lettered(
    own_sessions: Sessions,
) -> None:
    clock, bus = FrozenClock(T0), InMemoryBus()
    await bus.start()
    busy = SendResult.retryable("HTTP 503: busy")
    channel = ScriptedChannel(deque([busy] * (len(SCHEDULE) + 1)))
    (delivery_id,) = await queue(own_sessions, planned())
    worker = dispatcher(own_sessions, bus, clock, {"webhook": channel})

    for bound in SCHEDULE:
        assert await worker.step() == 1
        async with own_sessions() as session:
            row = await repository.get(session, "ws_test", delivery_id)
            assert row is not None
            assert row.status == "retrying"
            assert row.due_at == clock.now() + timedelta(seconds=bound)  # draw = the bound
        clock.advance(timedelta(seconds=bound - 1))
        assert await worker.step() == 0  # not due yet
        clock.advance(timedelta(seconds=1))

    assert await worker.step() == 1
    assert [m.attempt for m in channel.sent] == [1, 2, 3, 4]
    assert {m.delivery_id for m in channel.sent} == {delivery_id}
    async with own_sessions() as session:
        row = await repository.get(session, "ws_test", delivery_id)
        assert row is not None
        assert (row.status, row.due_at, row.reason) == ("failed", None, "HTTP 503: busy")
        history = await repository.attempts_of(session, delivery_id)
        assert [a.status for a in history] == ["queued", "failed", "failed", "failed", "failed"]
        assert history[-1].retry_at is None
    (letter,) = await dead_letters(bus)
    assert (letter.delivery_id, letter.attempts, letter.reason, letter.channel) == (
        delivery_id,
        4,
        "HTTP 503: busy",
        "webhook",
    )
    clock.advance(timedelta(days=1))
    assert await worker.step() == 0
    await bus.close()


async def test_a_permanent_failure_is_dead_lettered_at_once_on_the_bus(
    own_sessions: Sessions, bus: Bus
) -> None:
    channel = ScriptedChannel(deque([SendResult.permanent("550 no such user")]))
    (delivery_id,) = await queue(own_sessions, planned(channel="email", target={"email": "x@y"}))

    await dispatcher(own_sessions, bus, FrozenClock(T0), {"email": channel}).step()

    (letter,) = await dead_letters(bus)
    assert (letter.delivery_id, letter.attempts, letter.reason) == (
        delivery_id,
        1,
        "550 no such user",
    )
    assert (letter.workspace_id, letter.account_id, letter.step_id) == (
        "ws_test",
        "acme",
        "onboarding/nudge",
    )


async def test_a_webhook_of_a_deleted_subscription_fails(own_sessions: Sessions) -> None:
    bus = InMemoryBus()
    await bus.start()
    channel = ScriptedChannel()
    (delivery_id,) = await queue(
        own_sessions, planned(target={"url": "http://x.example.com", "subscription_id": "sub_gone"})
    )
    await dispatcher(own_sessions, bus, FrozenClock(T0), {"webhook": channel}).step()
    assert channel.sent == []
    async with own_sessions() as session:
        row = await repository.get(session, "ws_test", delivery_id)
        assert row is not None
        assert (row.status, row.reason) == ("failed", "its subscription was deleted")
    await bus.close()


async def test_a_channel_over_its_rate_limit_waits_without_using_an_attempt(
    own_sessions: Sessions,
) -> None:
    clock, channel = FrozenClock(T0), ScriptedChannel()
    ids = await queue(own_sessions, *(planned(contact_id=f"c-{n}") for n in range(3)))
    worker = dispatcher(
        own_sessions, InMemoryBus(), clock, {"webhook": channel}, rates={"webhook": 1.0}
    )

    assert await worker.step() == 3
    assert len(channel.sent) == 1
    async with own_sessions() as session:
        waiting = [
            row
            for row in [await repository.get(session, "ws_test", i) for i in ids]
            if row is not None and row.status == "queued"
        ]
        assert len(waiting) == 2
        assert {(r.attempts, r.due_at) for r in waiting} == {(0, T0 + timedelta(seconds=1))}

    clock.advance(timedelta(seconds=1))
    await worker.step()
    assert len(channel.sent) == 2
    clock.advance(timedelta(seconds=1))
    await worker.step()
    assert len(channel.sent) == 3
    assert all(m.attempt == 1 for m in channel.sent)


async def test_higher_priority_is_sent_first_and_the_rest_is_the_backlog(
    own_sessions: Sessions,
) -> None:
    channel, registry = ScriptedChannel(), CollectorRegistry()
    await queue(
        own_sessions,
        planned(contact_id="c-tip", priority=0),
        planned(contact_id="c-renewal", priority=30),
        planned(contact_id="c-later", not_before=T0 + timedelta(days=1), status="deferred"),
    )
    worker = dispatcher(
        own_sessions,
        InMemoryBus(),
        FrozenClock(T0),
        {"webhook": channel},
        batch=1,
        registry=registry,
    )
    await worker.step()
    assert [m.contact_id for m in channel.sent] == ["c-renewal"]
    assert registry.get_sample_value("milepost_messaging_deliveries_due") == 1.0
    await worker.step()
    assert registry.get_sample_value("milepost_messaging_deliveries_due") == 0.0


async def test_a_claim_lost_in_a_crash_is_sent_again_after_its_lease(
    own_sessions: Sessions,
) -> None:
    clock, channel = FrozenClock(T0), ScriptedChannel()
    (delivery_id,) = await queue(own_sessions, planned())
    crashed = dispatcher(own_sessions, InMemoryBus(), clock, {"webhook": channel})
    claimed, _ = await crashed.claim(clock.now())  # claimed, then the process died
    assert [c.delivery_id for c in claimed] == [delivery_id]
    assert await due_and_lease(own_sessions, delivery_id) == (T0, T0 + timedelta(seconds=120))

    survivor = dispatcher(own_sessions, InMemoryBus(), clock, {"webhook": channel})
    assert await survivor.step() == 0
    clock.advance(timedelta(seconds=121))
    assert await survivor.step() == 1
    (message,) = channel.sent
    assert (message.delivery_id, message.attempt) == (delivery_id, 2)
    assert await due_and_lease(own_sessions, delivery_id) == (None, None)


async def due_and_lease(sessions: Sessions, delivery_id: str) -> tuple[object, object]:
    async with sessions() as session:
        row = await repository.get(session, "ws_test", delivery_id)
        assert row is not None
        return row.due_at, row.leased_until


HISTORY = text(
    "INSERT INTO messaging_deliveries (delivery_id, workspace_id, account_id, trigger_id, "
    "contact_id, step_id, target, subject, body, category, priority, status, attempts, "
    "planned_at, not_before, due_at, finished_at, trace) "
    "SELECT 'd' || n, 'ws_test', 'acme', 't' || n, 'c', 's', '{}', '', '', 'c', n % 3, "
    "CASE WHEN n % 10 = 0 THEN 'queued' ELSE 'sent' END, 0, :at, :at, "
    "CASE WHEN n % 10 = 0 THEN CAST(:at AS timestamptz) END, "
    "CASE WHEN n % 10 = 0 THEN NULL ELSE CAST(:at AS timestamptz) END, '{}' "
    "FROM generate_series(1, 10000) AS n"
)
"""10,000 deliveries, one in ten of them due, the others finished."""


@pytest.mark.postgres
async def test_a_claim_reads_by_index_and_rewrites_its_rows_without_an_index_entry(
    own_postgres_url: str,
) -> None:
    engine = create_engine(own_postgres_url)
    sessions = create_session_factory(engine)
    async with sessions() as session:
        await session.execute(HISTORY, {"at": T0})
        await session.commit()
        await session.execute(text("ANALYZE messaging_deliveries"))
        await session.commit()
        claimed = await repository.claim_due(
            session, now=T0, limit=100, lease=timedelta(seconds=60)
        )
        counts = await session.execute(
            text(
                "SELECT seq_scan, n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                "WHERE relname = 'messaging_deliveries'"
            )
        )
        assert len(claimed) == 100
        assert tuple(counts.one()) == (0, 100, 100)  # no scan of the table; heap-only tuples
    await engine.dispose()


async def test_an_unknown_channel_fails_the_delivery_not_the_dispatcher(
    own_sessions: Sessions,
) -> None:
    bus = InMemoryBus()
    await bus.start()
    (delivery_id,) = await queue(own_sessions, planned(channel="pager"))
    assert await dispatcher(own_sessions, bus, FrozenClock(T0), {}).step() == 1
    async with own_sessions() as session:
        row = await repository.get(session, "ws_test", delivery_id)
        assert row is not None
        assert row.status == "failed"
        assert "no 'pager' channel" in (row.reason or "")
    await bus.close()


@pytest.mark.postgres
async def test_concurrent_dispatchers_send_each_delivery_once(own_postgres_url: str) -> None:
    engine = create_engine(own_postgres_url)
    own_sessions = create_session_factory(engine)
    clock = FrozenClock(T0)
    await queue(own_sessions, *(planned(contact_id=f"c-{n}") for n in range(60)))

    class Slow(ScriptedChannel):
        async def send(self, message: Message) -> SendResult:
            await asyncio.sleep(0.005)
            return await super().send(message)

    channels = [Slow(), Slow(), Slow()]
    workers = [
        dispatcher(own_sessions, InMemoryBus(), clock, {"webhook": c}, batch=7) for c in channels
    ]
    for _ in range(10):
        await asyncio.gather(*(w.step() for w in workers))
    sent = [m.delivery_id for c in channels for m in c.sent]
    assert len(sent) == 60
    assert len(set(sent)) == 60
    assert all(c.sent for c in channels)  # the work was shared
    await engine.dispose()


async def test_each_send_is_a_span_continuing_the_trace_the_delivery_was_planned_in(
    own_sessions: Sessions,
) -> None:
    planner_trace, planner_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    traced, untraced = await queue(own_sessions, planned(), planned(contact_id="c-other"))
    async with own_sessions() as session:
        await session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.delivery_id == traced)
            .values(trace={"traceparent": f"00-{planner_trace}-{planner_span}-01"})
        )
        await session.commit()
    exporter = InMemorySpanExporter()
    tracing = Tracing.exporting_to(exporter, service="test", batch=False)
    worker = dispatcher(
        own_sessions,
        InMemoryBus(),
        FrozenClock(T0),
        {"webhook": ScriptedChannel()},
        tracing=tracing,
    )

    assert await worker.step() == 2

    spans = {
        dict(span.attributes or {})["delivery.id"]: span for span in exporter.get_finished_spans()
    }
    send = spans[traced]
    assert (send.name, send.kind) == ("messaging send", SpanKind.CLIENT)
    assert dict(send.attributes or {}) == {"delivery.id": traced, "messaging.channel": "webhook"}
    assert f"{send.context.trace_id:032x}" == planner_trace
    assert send.parent is not None
    assert f"{send.parent.span_id:016x}" == planner_span
    assert spans[untraced].parent is None
    tracing.shutdown()


async def test_without_a_webhook_secret_a_webhook_fails_for_good_unsent(
    own_sessions: Sessions,
) -> None:
    channel = ScriptedChannel()
    (delivery_id,) = await queue(own_sessions, planned())
    worker = dispatcher_for(
        MessagingSettings(),
        sessions=own_sessions,
        bus=InMemoryBus(),
        clock=FrozenClock(T0),
        channels={"webhook": channel},
        registry=CollectorRegistry(),
    )

    assert await worker.step() == 1

    assert channel.sent == []
    async with own_sessions() as session:
        row = await repository.get(session, "ws_test", delivery_id)
    assert row is not None
    assert (row.status, row.reason) == ("failed", NO_WEBHOOK_SECRET)
