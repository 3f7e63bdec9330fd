"""Exactly-once across crashes, on real Kafka and PostgreSQL: an engine process killed with
SIGKILL mid-stream (three times) and restarted emits exactly the triggers of an
uninterrupted run of the same events: no trigger lost, none doubled.

Each run has its own topics (a topic prefix) and database, fed the same events, so the two
runs never see each other. Events all carry their account: attribution of user-only events
is covered by the stage's and the worker tests, and here every trigger id must be
reproducible.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.migrations import upgrade_to_head
from services.node_engine.paths.service import publish
from shared.bus import Bus, OutgoingRecord, TopicPartition
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.bus.namespaced import NamespacedBus
from shared.clock import SystemClock
from shared.consuming.models import AppliedOffsetRow
from shared.contracts import TOPICS, EventEnvelope, EventType, Topic, TriggerEnvelope
from shared.contracts.events import event_id_for
from shared.db import create_engine, create_session_factory
from shared.tenancy.models import Workspace
from tests.conftest import fresh_postgres_database
from tests.processes import MILEPOST, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(420)]

REFERENCE = Path(__file__).parents[3] / "services" / "node_engine" / "paths" / "reference"
ACCOUNTS = 120
KILLS_AT = (0.2, 0.45, 0.7)
"""Fractions of the input applied when the engine is killed."""


def events(workspace: str) -> list[EventEnvelope]:
    """Merchants through settle-in, setup and nurturing, interleaved across accounts."""
    now = datetime.now(UTC)
    steps = [
        ("group", None),
        ("track", "Merchant Approved"),
        ("track", "Profile Completed"),
        ("track", "Payout Account Connected"),
        ("track", "Listing Published"),
        *[("track", "Order Completed")] * 16,
    ]
    out: list[EventEnvelope] = []
    for position, (kind, name) in enumerate(steps):
        for account in range(ACCOUNTS):
            if account % 7 == 3 and position > 4 + account % 5:
                continue  # some merchants stall on the way
            message = f"{account}-{position}"
            out.append(
                EventEnvelope(
                    event_id=event_id_for(workspace, message),
                    workspace_id=workspace,
                    message_id=message,
                    type=EventType(kind),
                    event=name,
                    account_id=f"merchant-{account}",
                    user_id=f"owner-{account}",
                    properties={"amount": 400 + 37 * account} if name == "Order Completed" else {},
                    timestamp=now,
                    received_at=now,
                    source="segment",
                )
            )
    return out


async def prepare(
    database_url: str, bus: Bus, workspace: str, records: list[EventEnvelope]
) -> None:
    """Migrate, add the workspace, publish the path, provision topics, send the events."""
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    async with create_session_factory(engine)() as session:
        session.add(Workspace(id=workspace, name=workspace, created_at=datetime.now(UTC)))
        text = (REFERENCE / "platform-merchant.yaml").read_text()
        await publish(session, workspace, "platform-merchant.yaml", text, clock=SystemClock())
        await session.commit()
    await engine.dispose()
    await bus.ensure_topics(TOPICS, replication_factor=1)
    await bus.publish(
        [
            OutgoingRecord(Topic.EVENTS, r.key.encode(), r.model_dump_json().encode())
            for r in records
        ]
    )


async def applied_offsets(database_url: str, group: str, topic: str) -> dict[int, int]:
    """The next offset ``group`` applies per partition of ``topic``."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            rows = await session.execute(
                select(AppliedOffsetRow.partition, AppliedOffsetRow.next_offset).where(
                    AppliedOffsetRow.consumer_group == group, AppliedOffsetRow.topic == topic
                )
            )
            return dict(rows.all())
    finally:
        await engine.dispose()


async def end_offsets(bus: Bus, topic: str) -> dict[int, int]:
    ends = await bus.end_offsets([TopicPartition(topic, p) for p in range(12)])
    return {tp.partition: end for tp, end in ends.items() if end}


async def applied_fraction(database_url: str, bus: Bus, group: str) -> float:
    """The engine's applied offsets on the attributed events, over the events sent: roughly
    how far it is (after a crash the attributed events hold copies too, so this reaches 1
    before the end: :func:`drained` tells that)."""
    applied = await applied_offsets(database_url, group, Topic.ACCOUNT_EVENTS)
    return sum(applied.values()) / max(1, sum((await end_offsets(bus, Topic.EVENTS)).values()))


async def drained(database_url: str, bus: Bus, groups: tuple[str, str]) -> dict[int, int] | None:
    """When attribution applied every event sent and the engine every attributed event
    (copies included), the attributed events' end offsets; else ``None``."""
    attribution, engine = groups
    sent = await end_offsets(bus, Topic.EVENTS)
    if await applied_offsets(database_url, attribution, Topic.EVENTS) != sent:
        return None
    attributed = await end_offsets(bus, Topic.ACCOUNT_EVENTS)
    applied = await applied_offsets(database_url, engine, Topic.ACCOUNT_EVENTS)
    return attributed if applied == attributed else None


def tail(log: Path) -> str:
    return log.read_text()[-4000:]


def start_engine(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 - our own console script
            [MILEPOST, "engine"],
            env={
                **os.environ,
                "MILEPOST_PORT": str(free_port()),
                "MILEPOST_LOG_LEVEL": "WARNING",
                **env,
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def wait_for(
    process: subprocess.Popen[bytes], log: Path, what: str, done: Callable[[], Awaitable[bool]]
) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"engine exited early:\n{tail(log)}")
        if await done():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"engine did not reach {what}:\n{tail(log)}")


def reached(
    database_url: str, bus: Bus, group: str, fraction: float
) -> Callable[[], Awaitable[bool]]:
    async def done() -> bool:
        return await applied_fraction(database_url, bus, group) >= fraction

    return done


def settled(database_url: str, bus: Bus, groups: tuple[str, str]) -> Callable[[], Awaitable[bool]]:
    """Drained (:func:`drained`) twice, a second apart, with no attributed event between:
    attribution's last records published and applied too."""

    async def done() -> bool:
        first = await drained(database_url, bus, groups)
        if first is None:
            return False
        await asyncio.sleep(1)
        return await drained(database_url, bus, groups) == first

    return done


async def triggers_of(bus: Bus, workspace: str) -> list[tuple[str, bytes]]:
    ends = await bus.end_offsets([TopicPartition(Topic.TRIGGERS, p) for p in range(12)])
    consumer = await bus.subscribe([Topic.TRIGGERS], group_id=f"reader-{uuid.uuid4().hex}")
    found: list[tuple[str, bytes]] = []
    seen: dict[int, int] = {}
    try:
        for _ in range(300):
            for record in await consumer.poll(max_records=5000, timeout_ms=200):
                seen[record.partition] = record.offset
                trigger = TriggerEnvelope.model_validate_json(record.value)
                if trigger.workspace_id == workspace:
                    found.append((trigger.trigger_id, record.value))
            if all(seen.get(tp.partition, -1) >= end - 1 for tp, end in ends.items() if end):
                break
    finally:
        await consumer.close()
    return found


def comparable(value: bytes) -> tuple[Any, ...]:
    """A trigger without what depends on wall-clock time (when it was handled)."""
    t = TriggerEnvelope.model_validate_json(value)
    payload = {k: v for k, v in t.payload.items() if k != "days_in_node"}
    return (
        t.trigger_id,
        t.account_id,
        t.kind,
        t.stage,
        t.node,
        tuple(t.target_roles),
        t.reason,
        t.causing_event_id,
        repr(sorted(payload.items())),
    )


@pytest.fixture
def two_databases(postgres_server_url: str) -> Iterator[tuple[str, str]]:
    for first in fresh_postgres_database(postgres_server_url):
        for second in fresh_postgres_database(postgres_server_url):
            yield first, second


async def test_an_engine_killed_mid_stream_emits_exactly_the_triggers_of_an_uninterrupted_run(
    kafka_bootstrap: str, two_databases: tuple[str, str], topic_prefix: str, tmp_path: Path
) -> None:
    steady_db, crashing_db = two_databases
    workspace = f"ws{uuid.uuid4().hex[:12]}"
    source = events(workspace)
    runs: dict[str, list[tuple[str, bytes]]] = {}
    for name, database_url, kills in (
        ("steady", steady_db, ()),
        ("crashing", crashing_db, KILLS_AT),
    ):
        prefix = f"{topic_prefix}{name}."
        bus = NamespacedBus(
            KafkaBus(KafkaOptions(bootstrap_servers=kafka_bootstrap, linger_ms=1)), prefix
        )
        await bus.start()
        try:
            await prepare(database_url, bus, workspace, source)
            group, attribution = f"engine-{name}", f"attribution-{name}"
            env = {
                "MILEPOST_BUS": "kafka",
                "MILEPOST_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "MILEPOST_TOPIC_PREFIX": prefix,
                "MILEPOST_DATABASE_URL": database_url,
                "MILEPOST_ENGINE_GROUP_ID": group,
                "MILEPOST_ENGINE_MAX_BATCH_RECORDS": "40",
                "MILEPOST_ATTRIBUTION_GROUP_ID": attribution,
                "MILEPOST_ATTRIBUTION_MAX_BATCH_RECORDS": "40",
            }
            log = tmp_path / f"{name}.log"
            for fraction in kills:
                process = start_engine(env, log)
                await wait_for(
                    process, log, f"{fraction:.0%}", reached(database_url, bus, group, fraction)
                )
                process.send_signal(signal.SIGKILL)
                process.wait()
            process = start_engine(env, log)
            try:
                await wait_for(
                    process, log, "the end", settled(database_url, bus, (attribution, group))
                )
            finally:
                process.terminate()
                process.wait(timeout=30)
            runs[name] = await triggers_of(bus, workspace)
        finally:
            await bus.close()

    steady, crashing = runs["steady"], runs["crashing"]
    assert len(steady) > 10 * ACCOUNTS
    assert len({tid for tid, _ in steady}) == len(steady)
    by_id: dict[str, set[tuple[Any, ...]]] = {}
    for tid, value in crashing:
        by_id.setdefault(tid, set()).add(comparable(value))
    assert all(len(versions) == 1 for versions in by_id.values()), "a trigger id with two contents"
    assert sorted(v for versions in by_id.values() for v in versions) == sorted(
        comparable(value) for _, value in steady
    )
