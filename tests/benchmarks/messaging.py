"""Messaging delivery figures on PostgreSQL, in one run.

A local webhook sink runs in a process of its own (uvicorn, answering ``200 ok``). On a
fresh database, each side first runs ``--messaging-warmup`` sends untimed (connections
opened, statements prepared, the first claims' plans cached), then
``--messaging-deliveries`` timed ones:

- **limit**: the sink's raw capacity, measured just before: the same number of POSTs of a
  body of the same size with the channels' own client (``http_client``, aiohttp) at the
  dispatcher's concurrency, no database;
- **figure**: the dispatcher (``Dispatcher.step`` in a loop per lane, as ``Dispatcher.run``
  has them; the real webhook channel with signatures, the URL guard, claims with
  ``FOR UPDATE SKIP LOCKED``, an attempt row and a status update per delivery) from the
  first claim to the last recorded send.

Goal: >= 0.25 x the raw capacity. The database this run creates is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.channels.guard import UrlGuard
from services.messaging.channels.http import HttpChannel, HttpClient, http_client
from services.messaging.channels.webhooks import WebhookFormat, new_secret
from services.messaging.deliveries.dispatcher import DeliveryMetrics, Dispatcher, DispatchPolicy
from services.messaging.deliveries.message import Message
from services.messaging.deliveries.models import DeliveryRow
from services.messaging.deliveries.rate_limits import RateLimits
from services.messaging.deliveries.service import queue_delivery
from services.messaging.settings import MessagingSettings
from services.migrations import upgrade_to_head
from shared.bus.memory import InMemoryBus
from shared.clock import SystemClock
from shared.db import create_engine, create_session_factory
from tests.benchmarks import Benchmark, BenchmarkError, Figure, Report, say
from tests.benchmarks._system import CpuSample, Services, cpu_use
from tests.conftest import _on_server
from tests.processes import free_port

GOAL = 0.25
LOOPBACK = UrlGuard(allow_loopback=True)
"""The sink listens on 127.0.0.1."""
BODY = "Your trial ends in 3 days: book a walkthrough with your account manager. " * 3


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--messaging-deliveries",
        type=int,
        default=6000,
        metavar="N",
        help="webhook deliveries timed (and raw POSTs for the limit) (default: 6000)",
    )
    group.add_argument(
        "--messaging-warmup",
        type=int,
        default=1000,
        metavar="N",
        help="untimed deliveries (and raw POSTs) sent first, on both sides (default: 1000)",
    )
    group.add_argument(
        "--messaging-concurrency",
        type=int,
        default=16,
        metavar="N",
        help="sends in flight, for the dispatcher and the raw client (default: 16)",
    )
    group.add_argument(
        "--messaging-batch",
        type=int,
        default=200,
        metavar="N",
        help="deliveries the dispatcher claims per step (default: 200)",
    )
    group.add_argument(
        "--messaging-lanes",
        type=int,
        default=MessagingSettings.model_fields["dispatch_lanes"].default,
        metavar="N",
        help="dispatcher steps in flight at once, as Dispatcher.run has them "
        "(default: the product's, %(default)s)",
    )


async def run(args: argparse.Namespace) -> Report:
    server_url = os.environ.get("MILEPOST_TEST_DATABASE_URL")
    if not server_url:
        raise BenchmarkError("set MILEPOST_TEST_DATABASE_URL (make services-up writes it)")
    count, concurrency = args.messaging_deliveries, args.messaging_concurrency
    warmup = args.messaging_warmup
    name = f"milepost_bench_msg_{uuid.uuid4().hex[:8]}"
    database_url = make_url(server_url).set(database=name).render_as_string(False)
    services = Services.find(os.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""), database_url)
    await _on_server(server_url, f'CREATE DATABASE "{name}"')
    port = free_port()
    sink = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.services.messaging.http_sink",
        str(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/hooks"
    try:
        await _wait_for(url)
        engine = create_engine(database_url, pool_size=10)
        try:
            await upgrade_to_head(engine)
            sessions = create_session_factory(engine)
            say(f"  raw capacity: {count:,} POSTs at concurrency {concurrency} ({warmup:,} first)")
            raw_seconds, raw_cpu = await _raw_posts(
                url, (warmup, count), concurrency, sink.pid, services
            )
            async with http_client(10.0, LOOPBACK) as client:
                dispatcher = _dispatcher(args, sessions, client)
                say(f"  warm-up: {warmup:,} webhook deliveries, untimed")
                await _queue(sessions, url, range(warmup))
                await _dispatch_all(dispatcher, args.messaging_lanes)
                say(f"  dispatching {count:,} webhook deliveries")
                await _queue(sessions, url, range(warmup, warmup + count))
                before = CpuSample.take(sink.pid, services)
                began = time.perf_counter()
                await _dispatch_all(dispatcher, args.messaging_lanes)
                seconds = time.perf_counter() - began
                dispatch_cpu = cpu_use(before, CpuSample.take(sink.pid, services), "sink")
            async with sessions() as session:
                sent = await session.scalar(
                    select(func.count()).where(DeliveryRow.status == "sent")
                )
            if sent != warmup + count:
                raise BenchmarkError(f"{sent} of {warmup + count} deliveries were sent")
        finally:
            await engine.dispose()
    finally:
        sink.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sink.wait(), timeout=10)
        await _on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    details: dict[str, Any] = {
        "deliveries": count,
        "warm-up deliveries (untimed)": warmup,
        "concurrency": concurrency,
        "dispatcher batch": args.messaging_batch,
        "dispatcher lanes": args.messaging_lanes,
        "raw seconds": round(raw_seconds, 2),
        "dispatcher seconds": round(seconds, 2),
        **{f"raw: {k}": v for k, v in raw_cpu.items()},
        **{f"dispatcher: {k}": v for k, v in dispatch_cpu.items()},
    }
    return Report(
        "messaging",
        "Messaging: webhook deliveries/s from the dispatcher to a local sink",
        [
            Figure(
                "dispatcher deliveries/s (vs raw POSTs/s)",
                count / seconds,
                "/s",
                limit=count / raw_seconds,
                goal=GOAL,
            )
        ],
        details,
        notes=(
            "the limit is plain concurrent POSTs with the same client to the same sink in the same "
            "run; the "
            "dispatcher also signs each request, checks the URL and records every attempt "
            "in PostgreSQL",
        ),
    )


def _dispatcher(
    args: argparse.Namespace, sessions: async_sessionmaker[AsyncSession], client: HttpClient
) -> Dispatcher:
    channel = HttpChannel(WebhookFormat(), client=client, guard=LOOPBACK, clock=SystemClock())
    return Dispatcher(
        sessions=sessions,
        bus=InMemoryBus(),
        clock=SystemClock(),
        channels={"webhook": channel},
        policy=DispatchPolicy(
            schedule=(1.0,),
            batch=args.messaging_batch,
            concurrency=args.messaging_concurrency,
            lease=timedelta(minutes=5),
            idle_seconds=0.01,
            default_secret=new_secret(),
            lanes=args.messaging_lanes,
        ),
        rate_limits=RateLimits({}),
        metrics=DeliveryMetrics(CollectorRegistry()),
    )


async def _queue(sessions: async_sessionmaker[AsyncSession], url: str, numbers: range) -> None:
    async with sessions() as session:
        now = datetime.now(UTC)
        for n in numbers:
            await queue_delivery(session, _planned(n, url, now))
        await session.commit()


async def _dispatch_all(dispatcher: Dispatcher, lanes: int) -> None:
    """:meth:`Dispatcher.run`'s lanes, each until a step finds nothing due."""

    async def lane() -> None:
        while await dispatcher.step():
            pass

    await asyncio.gather(*(lane() for _ in range(lanes)))


def _planned(n: int, url: str, now: datetime) -> Message:
    return Message(
        workspace_id="bench",
        account_id=f"acct-{n % 500}",
        trigger_id=f"bench-{n}",
        playbook_id="bench",
        playbook_version=1,
        step_id="bench/notify",
        contact_id=f"c-{n}",
        channel="webhook",
        target={"url": url},
        subject="Trial ending",
        body=BODY,
        category="lifecycle",
        priority=0,
        planned_at=now,
        not_before=now,
    )


async def _wait_for(url: str) -> None:
    async with http_client(2.0, LOOPBACK) as client:
        for _ in range(200):
            with contextlib.suppress(OSError):
                async with client.post(url, data=b"{}"):
                    return
            await asyncio.sleep(0.05)
    raise BenchmarkError("the webhook sink did not start")


async def _raw_posts(
    url: str, warmup_and_count: tuple[int, int], concurrency: int, sink_pid: int, services: Services
) -> tuple[float, dict[str, float]]:
    """Seconds and CPU of ``count`` concurrent POSTs, after ``warmup`` untimed ones."""
    warmup, count = warmup_and_count
    body = (
        '{"type":"message.created","timestamp":"2026-01-01T00:00:00+00:00","data":{"body":"'
        + BODY
        + '"}}'
    ).encode()

    async def posts(client: HttpClient, numbers: range) -> None:
        queue = iter(numbers)

        async def post() -> None:
            for n in queue:
                async with client.post(
                    url,
                    data=body,
                    headers={"content-type": "application/json", "idempotency-key": str(n)},
                ) as answer:
                    await answer.read()
                if answer.status != 200:
                    raise BenchmarkError(f"the sink answered {answer.status}")

        await asyncio.gather(*(post() for _ in range(concurrency)))

    async with http_client(10.0, LOOPBACK) as client:
        await posts(client, range(warmup))
        before = CpuSample.take(sink_pid, services)
        began = time.perf_counter()
        await posts(client, range(warmup, warmup + count))
        seconds = time.perf_counter() - began
        return seconds, cpu_use(before, CpuSample.take(sink_pid, services), "sink")


BENCHMARK = Benchmark(
    "messaging",
    "webhook deliveries/s from the dispatcher to a local sink, vs raw POSTs",
    add_arguments,
    run,
)
