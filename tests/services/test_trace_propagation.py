"""One trace from an ingest request to the message it causes: the caller's ``traceparent``
is continued by ingest, carried on ``milepost.events`` and, attributed, on
``milepost.accounts.events``, continued by the node engine,
carried on ``milepost.triggers``, kept by messaging on the delivery it queues and
continued by the send."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from services.ingest.app import mount_ingest
from services.ingest.settings import IngestSettings
from services.messaging.processing.consumer import ConsumerMetrics
from services.messaging.subscriptions.consumer import SubscriptionsConsumer
from services.messaging.subscriptions.service import Filters, create_subscription
from services.migrations import upgrade_to_head
from services.node_engine.app import mount_engine
from services.node_engine.paths.service import REFERENCE_PATHS, publish
from services.node_engine.processing.worker import INPUT_TOPICS
from services.node_engine.settings import EngineSettings
from shared.attribution.stage import INPUT_TOPICS as ATTRIBUTION_TOPICS
from shared.attribution.stage import attribution_stage
from shared.bus import ConsumedRecord
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.contracts import TOPICS, Topic
from shared.db import create_engine, create_session_factory
from shared.observability.http import create_http_app
from shared.observability.tracing import Tracing
from shared.runtime import Resources
from shared.tenancy.service import create_workspace
from tests.services.ingest.conftest import RECEIVED_AT
from tests.services.messaging.channels.support import resolving_to
from tests.services.messaging.deliveries.support import ScriptedChannel, dispatcher

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[tuple[Resources, InMemorySpanExporter]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'trace.db'}")
    await upgrade_to_head(engine)
    exporter = InMemorySpanExporter()
    bus = InMemoryBus()
    await bus.start()
    await bus.ensure_topics(TOPICS, replication_factor=1)
    yield (
        Resources(
            bus,
            engine,
            create_session_factory(engine),
            FrozenClock(RECEIVED_AT),
            CollectorRegistry(),
            Tracing.exporting_to(exporter, service="test", batch=False),
        ),
        exporter,
    )
    await engine.dispose()


def trace_of(record: ConsumedRecord) -> tuple[str, str]:
    """(trace id, parent span id) from a record's ``traceparent``."""
    (value,) = [v for name, v in record.headers if name == "traceparent"]
    _, trace_id, span_id, _ = value.decode().split("-")
    return trace_id, span_id


async def test_the_trace_runs_from_the_request_to_the_send(
    resources: tuple[Resources, InMemorySpanExporter],
) -> None:
    res, exporter = resources
    app = create_http_app("test", "test", res)
    mount_ingest(app, IngestSettings(), res)
    worker = mount_engine(app, EngineSettings(group_id="trace-engine"), res)
    async with res.sessions() as session:
        key = await create_workspace(session, "traced", clock=res.clock)
        source = REFERENCE_PATHS / "platform-merchant.yaml"
        await publish(session, key.workspace_id, source.name, source.read_text(), clock=res.clock)
        await session.commit()

    auth = base64.b64encode(f"{key.write_key}:".encode()).decode()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://ingest"
    ) as client:
        answer = await client.post(
            "/v1/group",
            json={"userId": "u1", "groupId": "acme", "traits": {"business_type": "platform"}},
            headers={
                "Authorization": f"Basic {auth}",
                "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
            },
        )
    assert answer.status_code == 200

    reader = await res.bus.subscribe([Topic.EVENTS, Topic.TRIGGERS], group_id="reader")
    stage = attribution_stage(res)
    attributing = await res.bus.subscribe(list(ATTRIBUTION_TOPICS), group_id=stage.stream.group_id)
    consumer = await res.bus.subscribe(list(INPUT_TOPICS), group_id="trace-engine")
    for _ in range(3):
        await stage.step(attributing)
    for _ in range(3):
        await worker.step(consumer)
    records = await reader.poll(max_records=100, timeout_ms=10)
    (event,) = [r for r in records if r.topic == Topic.EVENTS]
    triggers = [r for r in records if r.topic == Topic.TRIGGERS]
    assert triggers

    spans = {span.name: span for span in exporter.get_finished_spans()}
    request, applied = spans["HTTP POST"], spans["engine apply event"]
    assert request.parent is not None
    assert f"{request.parent.span_id:016x}" == CALLER_SPAN
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/v1/group"
    assert trace_of(event) == (CALLER_TRACE, f"{request.context.span_id:016x}")
    assert applied.parent is not None
    assert applied.parent.span_id == request.context.span_id
    for trigger in triggers:
        assert trace_of(trigger) == (CALLER_TRACE, f"{applied.context.span_id:016x}")

    # messaging: a marketing system's subscription receives each trigger, sent in the trace
    async with res.sessions() as session:
        await create_subscription(
            session,
            key.workspace_id,
            url="https://crm.example/hooks",
            filters=Filters(),
            description=None,
            guard=resolving_to("93.184.215.14"),
            now=RECEIVED_AT,
        )
        await session.commit()
    fan_out = SubscriptionsConsumer(
        bus=res.bus,
        sessions=res.sessions,
        clock=res.clock,
        group_id="trace-subscriptions",
        retention=timedelta(days=1),
        metrics=ConsumerMetrics(res.registry),
    )
    triggers_in = await res.bus.subscribe([Topic.TRIGGERS], group_id="trace-subscriptions")
    await fan_out.step(triggers_in)
    channel = ScriptedChannel()
    sender = dispatcher(
        res.sessions, res.bus, FrozenClock(RECEIVED_AT), {"webhook": channel}, tracing=res.tracing
    )
    assert await sender.step() == len(triggers) == len(channel.sent)

    sends = [span for span in exporter.get_finished_spans() if span.name == "messaging send"]
    assert len(sends) == len(triggers)
    for send in sends:
        assert f"{send.context.trace_id:032x}" == CALLER_TRACE
        assert send.parent is not None
        assert send.parent.span_id == applied.context.span_id
