"""Ingest throughput beside the raw Kafka producer, on the same broker, in one run.

1. The limit: an ``AIOKafkaProducer`` configured as :class:`KafkaBus` configures it
   (``acks=all``, idempotent, the same linger and batch size) sends the very envelopes
   ingest would publish, fully pipelined, to a fresh topic with ``milepost.events``'
   partition count, and waits for every ack; the fastest of ``--raw-repeats`` runs.
2. For reading the gap: ``KafkaBus.publish`` with the same records, called the way ingest
   calls it (``--clients`` concurrent callers, one awaited call per ``--batch-size``).
3. The figure: ``milepost ingest`` in its own process (uvicorn, Kafka, the database), fed
   by ``--clients`` concurrent httpx clients posting ``/v1/batch`` requests of
   ``--batch-size`` track calls after a warm-up. Every answer must be 200 with every
   event accepted; anything else fails the benchmark.

Before measuring, the workspace's dedup ledger is seeded with ``--ledger-rows`` message ids
and the table analysed, so the figure is ingest's steady state rather than a fresh table's
(whose query plans depend on whether autovacuum has analysed it yet).

Goal: ingest at >= 0.4 x the raw producer. The workspace and the ledger rows this run
creates are deleted afterwards, and so is the raw topic; the events it publishes stay on
``milepost.events`` (topic retention applies).

``--profile-server FILE`` runs the server under cProfile (and slows it: the figures of
such a run are for reading the profile, not for comparing).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import logging
import os
import pstats
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Integer, bindparam, delete, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.deduplication.models import PublishedMessage
from services.ingest.settings import IngestSettings
from services.ingest.tracking.service import CallDefaults, normalise_call
from services.migrations import upgrade_to_head
from shared.bus import OutgoingRecord
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.clock import SystemClock
from shared.contracts import TOPICS, Topic
from shared.db import create_engine, create_session_factory
from shared.db.types import UtcDateTime
from shared.errors import BusUnavailable
from shared.tenancy.models import Workspace, WriteKey
from shared.tenancy.service import IssuedKey, create_workspace
from tests.benchmarks import Benchmark, BenchmarkError, Figure, Report, progress, say
from tests.benchmarks._system import (
    CpuSample,
    Phase,
    Services,
    at_least,
    busy_before,
    cpu_use,
    percentile,
    tail,
)
from tests.processes import free_port

GOAL = 0.4
PROFILE_ENV = "MILEPOST_BENCH_PROFILE_SERVER"
EVENT_NAMES = (
    "Dashboard Viewed",
    "Report Exported",
    "Seat Added",
    "Integration Connected",
    "Invoice Paid",
    "Workflow Created",
    "Comment Posted",
    "Feature Used",
)
PLANS = ("starter", "growth", "business", "enterprise")
USERS_PER_ACCOUNT = 25
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 30.0
TOPIC_READY_TIMEOUT_S = 30.0
LEDGER_SEED_AGE = timedelta(hours=12)
"""Inside the 24 h deduplication window, so the server's pruning leaves the seed alone."""
"""Background load above which the report warns that the figures may be depressed."""


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--events",
        type=at_least(1),
        default=100_000,
        help="events measured in each phase (default: %(default)s)",
    )
    group.add_argument(
        "--warmup-events",
        type=at_least(0),
        default=5_000,
        help="events sent before measuring (default: %(default)s)",
    )
    group.add_argument(
        "--clients",
        type=at_least(1),
        default=8,
        help="concurrent HTTP clients, and KafkaBus.publish callers (default: %(default)s)",
    )
    group.add_argument(
        "--batch-size",
        type=at_least(1),
        default=100,
        help="events per /v1/batch request (default: %(default)s)",
    )
    group.add_argument(
        "--accounts",
        type=at_least(1),
        default=10_000,
        help="distinct accounts (context.groupId, hence Kafka keys) (default: %(default)s)",
    )
    group.add_argument(
        "--raw-repeats",
        type=at_least(1),
        default=3,
        help="raw producer runs; the fastest is the limit (default: %(default)s)",
    )
    group.add_argument(
        "--ledger-rows",
        type=at_least(0),
        default=200_000,
        help="message ids already in the workspace's dedup ledger before measuring, as after "
        "hours of traffic, with fresh table statistics (default: %(default)s)",
    )
    group.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    group.add_argument(
        "--profile-server",
        type=Path,
        metavar="FILE",
        default=Path(os.environ[PROFILE_ENV]) if os.environ.get(PROFILE_ENV) else None,
        help=f"run the ingest server under cProfile and write its stats to FILE "
        f"(or set {PROFILE_ENV}); slows the server down",
    )


# -- the run ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    """Everything sent, serialised before any clock starts."""

    warmup_bodies: list[tuple[bytes, int]]
    bodies: list[tuple[bytes, int]]
    """``/v1/batch`` request bodies with their event counts."""
    records: list[tuple[bytes, bytes]]
    """(key, value) of the envelopes ingest publishes for ``bodies``, for the raw phases."""
    warmup_records: list[tuple[bytes, bytes]]

    @property
    def events(self) -> int:
        return sum(count for _, count in self.bodies)


async def run(args: argparse.Namespace) -> Report:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        raise BenchmarkError(
            "KAFKA_BOOTSTRAP_SERVERS is not set: start the services (make services-up) and "
            "load them with: set -a; . .cache/services.env; set +a"
        )
    say(f"kafka: {bootstrap}; ensuring the Milepost topics")
    try:
        await KafkaBus(KafkaOptions(bootstrap_servers=bootstrap)).ensure_topics(
            TOPICS, replication_factor=1
        )
    except BusUnavailable as exc:
        raise BenchmarkError(f"Kafka at {bootstrap} is not usable: {exc}") from exc
    run_id = secrets.token_hex(4)
    idle_load, notes = await busy_before("the broker, the server and the clients")
    with tempfile.TemporaryDirectory(prefix="milepost-bench-") as tmp:
        workdir = Path(tmp)
        database_url = os.environ.get("MILEPOST_TEST_DATABASE_URL")
        if database_url:
            database = make_url(database_url).render_as_string(hide_password=True)
        else:
            database_url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
            database = f"temporary SQLite file {workdir / 'bench.db'}"
            notes.append(
                "MILEPOST_TEST_DATABASE_URL is not set: the dedup ledger ran on a temporary "
                "SQLite file, not PostgreSQL"
            )
            say(f"note: {notes[-1]}")
        engine = create_engine(database_url)
        try:
            say(f"database: {database}; migrating to head")
            try:
                await upgrade_to_head(engine)
            except (SQLAlchemyError, OSError) as exc:
                raise BenchmarkError(f"database {database} is not usable: {exc}") from exc
            issued = await _create_workspace(engine, f"bench-{run_id}")
            try:
                await _seed_ledger(engine, issued.workspace_id, args.ledger_rows)
                return await _measure(
                    args,
                    bootstrap=bootstrap,
                    database_url=database_url,
                    database=database,
                    issued=issued,
                    run_id=run_id,
                    workdir=workdir,
                    notes=notes,
                    idle_load=idle_load,
                )
            finally:
                removed = await _drop_workspace(engine, issued.workspace_id)
                say(f"cleanup: workspace bench-{run_id} and {removed:,} ledger rows deleted")
        finally:
            await engine.dispose()


async def _measure(
    args: argparse.Namespace,
    *,
    bootstrap: str,
    database_url: str,
    database: str,
    issued: IssuedKey,
    run_id: str,
    workdir: Path,
    notes: list[str],
    idle_load: float | None,
) -> Report:
    options = KafkaOptions(bootstrap_servers=bootstrap, client_id="milepost-bench")
    workload = _prepare(args, issued.workspace_id, run_id)
    envelope_bytes = statistics.fmean(len(v) for _, v in workload.records)
    body_bytes = statistics.fmean(len(b) for b, _ in workload.bodies)

    services = Services.find(bootstrap, database_url)
    raw_topic = f"milepost.bench.raw.{run_id}"
    partitions, raw_runs, bus = await _raw_phases(args, options, raw_topic, workload, services)
    raw = max(raw_runs, key=lambda phase: phase.rate)

    server, latencies, breakdown = await _ingest_phase(
        args,
        bootstrap=bootstrap,
        database_url=database_url,
        issued=issued,
        workdir=workdir,
        workload=workload,
        services=services,
    )
    if args.profile_server is not None:
        notes.append(
            f"the server ran under cProfile ({args.profile_server}): these figures are not "
            "comparable with an unprofiled run"
        )

    shape = f"{args.clients} clients x {args.batch_size}-event batches"
    details: dict[str, Any] = {
        "events per phase": workload.events,
        "warm-up events": args.warmup_events,
        "clients x batch": shape,
        "accounts (keys)": args.accounts,
        "dedup ledger rows before measuring": args.ledger_rows + args.warmup_events,
        "envelope bytes (mean)": round(envelope_bytes),
        "request body bytes (mean)": round(body_bytes),
        "partitions": partitions,
        "kafka": bootstrap,
        "database": database,
        "machine cores": os.cpu_count() or 0,
        "machine busy before the run (cores)": "-" if idle_load is None else round(idle_load, 2),
        "raw: events/s of each run": ", ".join(f"{run.rate:,.0f}" for run in raw_runs),
        "raw: seconds (fastest run)": round(raw.seconds, 2),
        **{f"raw: {k}": v for k, v in raw.cpu.items()},
        "bus: seconds": round(bus.seconds, 2),
        **{f"bus: {k}": v for k, v in bus.cpu.items()},
        "ingest: seconds": round(server.seconds, 2),
        **{f"ingest: {k}": v for k, v in server.cpu.items()},
        **_server_cpu_cost(server, len(workload.bodies)),
        "ingest: request ms p50": round(percentile(latencies, 0.50) * 1000, 1),
        "ingest: request ms p90": round(percentile(latencies, 0.90) * 1000, 1),
        "ingest: request ms p99": round(percentile(latencies, 0.99) * 1000, 1),
        **breakdown,
    }
    return Report(
        benchmark="ingest",
        title=f"ingest: POST /v1/batch ({shape}) beside the raw producer",
        figures=[
            Figure("raw producer, pipelined (the limit)", raw.rate, "events/s"),
            Figure(
                f"KafkaBus.publish, {args.clients} callers x {args.batch_size}",
                bus.rate,
                "events/s",
                limit=raw.rate,
            ),
            Figure("ingest POST /v1/batch", server.rate, "events/s", limit=raw.rate, goal=GOAL),
        ],
        details=details,
        notes=notes,
    )


# -- the workload ------------------------------------------------------------------------


def _prepare(args: argparse.Namespace, workspace_id: str, run_id: str) -> Workload:
    rng = random.Random(args.seed)
    started = time.perf_counter()
    say(f"preparing {args.warmup_events:,} warm-up and {args.events:,} measured events")
    warmup_bodies, warmup_records = _batches(
        rng, args, workspace_id, f"{run_id}-w", args.warmup_events
    )
    bodies, records = _batches(rng, args, workspace_id, f"{run_id}-m", args.events)
    say(f"prepared in {time.perf_counter() - started:.1f}s")
    return Workload(warmup_bodies, bodies, records, warmup_records)


def _batches(
    rng: random.Random, args: argparse.Namespace, workspace_id: str, prefix: str, events: int
) -> tuple[list[tuple[bytes, int]], list[tuple[bytes, bytes]]]:
    """Request bodies, and the envelopes ingest makes of them, serialised as ingest does."""
    now = datetime.now(UTC)
    max_event_bytes = IngestSettings().max_event_bytes
    bodies: list[tuple[bytes, int]] = []
    records: list[tuple[bytes, bytes]] = []
    for start in range(0, events, args.batch_size):
        count = min(args.batch_size, events - start)
        calls = [
            _track_call(rng, args.accounts, f"{prefix}-{start + i:09d}", now) for i in range(count)
        ]
        sent_at = now.isoformat()
        bodies.append((orjson.dumps({"batch": calls, "sentAt": sent_at}), count))
        defaults = CallDefaults(
            received_at=now,
            context={},
            integrations={},
            sent_at=now,
            max_event_bytes=max_event_bytes,
        )
        for call in calls:
            prepared = normalise_call(
                call, workspace_id=workspace_id, call_type=None, defaults=defaults
            )
            records.append((prepared.key, prepared.value))
    return bodies, records


def _track_call(
    rng: random.Random, accounts: int, message_id: str, now: datetime
) -> dict[str, Any]:
    account = rng.randrange(accounts)
    return {
        "type": "track",
        "messageId": message_id,
        "userId": f"user-{account:05d}-{rng.randrange(USERS_PER_ACCOUNT):02d}",
        "event": rng.choice(EVENT_NAMES),
        "properties": {"plan": rng.choice(PLANS), "seats": rng.randint(1, 500)},
        "context": {
            "groupId": f"acct-{account:05d}",
            "library": {"name": "analytics-python", "version": "2.3.2"},
        },
        "timestamp": (now - timedelta(seconds=rng.uniform(0, 5))).isoformat(),
    }


# -- 1 and 2: the raw producer and KafkaBus.publish --------------------------------------


async def _raw_phases(
    args: argparse.Namespace,
    options: KafkaOptions,
    topic: str,
    workload: Workload,
    services: Services,
) -> tuple[int, list[Phase], Phase]:
    producer = AIOKafkaProducer(
        bootstrap_servers=options.bootstrap_servers,
        client_id=f"{options.client_id}-raw",
        acks="all",
        enable_idempotence=True,
        linger_ms=options.linger_ms,
        max_batch_size=options.max_batch_bytes,
        request_timeout_ms=options.request_timeout_ms,
    )
    admin = AIOKafkaAdminClient(
        bootstrap_servers=options.bootstrap_servers, client_id=f"{options.client_id}-admin"
    )
    await admin.start()
    created = False
    try:
        await producer.start()
        try:
            partitions = len(await producer.partitions_for(Topic.EVENTS.value))
            await admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
            created = True
            await _wait_for_leaders(producer, topic, partitions)
            say(f"raw producer: topic {topic} ({partitions} partitions); warming up")
            await _pipelined(producer, topic, workload.warmup_records, lambda _: None)
            runs = []
            for attempt in range(1, args.raw_repeats + 1):
                label = f"raw producer {attempt}/{args.raw_repeats}"
                with progress(label, len(workload.records), "events") as advance:
                    before = CpuSample.take(None, services)
                    await _pipelined(producer, topic, workload.records, advance)
                    runs.append(
                        _phase(len(workload.records), before, CpuSample.take(None, services))
                    )
        finally:
            await producer.stop()

        bus = KafkaBus(_with_client_id(options, f"{options.client_id}-bus"))
        await bus.start()
        try:
            chunks = [
                [OutgoingRecord(topic, k, v) for k, v in workload.records[i : i + args.batch_size]]
                for i in range(0, len(workload.records), args.batch_size)
            ]
            warmup = [
                [
                    OutgoingRecord(topic, k, v)
                    for k, v in workload.warmup_records[i : i + args.batch_size]
                ]
                for i in range(0, len(workload.warmup_records), args.batch_size)
            ]
            await _concurrently(args.clients, warmup, bus.publish, lambda _: None)
            label = f"KafkaBus.publish x{args.clients}"
            with progress(label, len(workload.records), "events") as advance:
                before = CpuSample.take(None, services)
                await _concurrently(args.clients, chunks, bus.publish, advance)
                bus_phase = _phase(len(workload.records), before, CpuSample.take(None, services))
        finally:
            await bus.close()
        return partitions, runs, bus_phase
    finally:
        if created:
            with contextlib.suppress(Exception):
                await admin.delete_topics([topic])
        await admin.close()


async def _wait_for_leaders(producer: Any, topic: str, partitions: int) -> None:
    """A new topic's partitions need a leader before sends stop bouncing."""
    deadline = time.monotonic() + TOPIC_READY_TIMEOUT_S
    wanted = [KafkaTopicPartition(topic, p) for p in range(partitions)]
    await producer.partitions_for(topic)  # makes the client track the topic's metadata
    while time.monotonic() < deadline:
        await producer.client.force_metadata_update()
        leaders = [producer.client.cluster.leader_for_partition(tp) for tp in wanted]
        if all(leader is not None and leader >= 0 for leader in leaders):
            break
        await asyncio.sleep(0.1)
    else:
        raise BenchmarkError(f"topic {topic} had no leader for every partition in time")
    # The broker may still answer NOT_LEADER for a moment; aiokafka retries and warns.
    # One probe per partition absorbs that before anything is measured, quietly.
    with _quiet_logger("aiokafka.producer.sender"):
        probes = [await producer.send(topic, b"", partition=p) for p in range(partitions)]
        await asyncio.gather(*probes)


def _with_client_id(options: KafkaOptions, client_id: str) -> KafkaOptions:
    return dataclasses.replace(options, client_id=client_id)


async def _pipelined(
    producer: Any,
    topic: str,
    records: Sequence[tuple[bytes, bytes]],
    advance: Callable[[int], None],
) -> None:
    """Send everything without waiting (``send`` only waits when the buffer is full),
    then wait for every ack, in order: cheaper than ``gather`` on this many futures."""
    deliveries = []
    step = 1000
    for index, (key, value) in enumerate(records, 1):
        deliveries.append(await producer.send(topic, value, key=key))
        if index % step == 0:
            advance(step)
    for delivery in deliveries:
        await delivery
    if len(records) % step:
        advance(len(records) % step)


async def _concurrently(
    callers: int,
    chunks: Sequence[Sequence[OutgoingRecord]],
    publish: Callable[[Sequence[OutgoingRecord]], Any],
    advance: Callable[[int], None],
) -> None:
    pending = iter(chunks)

    async def caller() -> None:
        for chunk in pending:
            await publish(chunk)
            advance(len(chunk))

    await _gather_tasks(caller() for _ in range(callers))


# -- 3: the ingest server ----------------------------------------------------------------


async def _ingest_phase(
    args: argparse.Namespace,
    *,
    bootstrap: str,
    database_url: str,
    issued: IssuedKey,
    workdir: Path,
    workload: Workload,
    services: Services,
) -> tuple[Phase, list[float], dict[str, Any]]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MILEPOST_BUS": "kafka",
        "MILEPOST_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MILEPOST_DATABASE_URL": database_url,
        "MILEPOST_HOST": "127.0.0.1",
        "MILEPOST_PORT": str(port),
        "MILEPOST_LOG_LEVEL": "WARNING",
        "MILEPOST_DATA_DIR": str(workdir / "data"),
    }
    log_path = workdir / "ingest-server.log"
    command = _server_command(args.profile_server)
    say(f"starting the ingest server on {base_url}: {' '.join(command[1:])}")
    log = _open_log(log_path)
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    auth = base64.b64encode(f"{issued.write_key}:".encode()).decode()
    headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/json"}
    try:
        async with httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(
                max_connections=args.clients, max_keepalive_connections=args.clients
            ),
        ) as client:
            await _wait_ready(client, process, log_path)
            say(f"ingest server ready (pid {process.pid}); warming up")
            await _post_all(client, args.clients, workload.warmup_bodies, lambda _: None, [])
            metrics_before = await _server_metrics(client)
            latencies: list[float] = []
            with progress("ingest /v1/batch", workload.events, "events") as advance:
                before = CpuSample.take(process.pid, services)
                await _post_all(client, args.clients, workload.bodies, advance, latencies)
                phase = _phase(workload.events, before, CpuSample.take(process.pid, services))
            breakdown = _breakdown(metrics_before, await _server_metrics(client))
    except BenchmarkError:
        say(f"ingest server log (last lines of {log_path}):\n{tail(log_path)}")
        raise
    finally:
        await _stop(process)
        log.close()
    if args.profile_server is not None:
        _print_profile(args.profile_server)
    return phase, latencies, breakdown


def _server_command(profile: Path | None) -> list[str]:
    script = Path(sys.executable).with_name("milepost")
    if profile is not None:
        if not script.exists():
            raise BenchmarkError(f"--profile-server needs the milepost script at {script}")
        return [sys.executable, "-m", "cProfile", "-o", str(profile), str(script), "ingest"]
    if script.exists():
        return [sys.executable, str(script), "ingest"]
    return [sys.executable, "-c", "from services.cli import main; main()", "ingest"]


async def _wait_ready(
    client: httpx.AsyncClient, process: asyncio.subprocess.Process, log_path: Path
) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise BenchmarkError(f"the ingest server exited with status {process.returncode}")
        try:
            response = await client.get("/readyz")
        except httpx.TransportError as exc:
            last = repr(exc)
        else:
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text}"
        await asyncio.sleep(0.2)
    raise BenchmarkError(f"the ingest server was not ready in {SERVER_START_TIMEOUT_S}s: {last}")


async def _post_all(
    client: httpx.AsyncClient,
    clients: int,
    bodies: Sequence[tuple[bytes, int]],
    advance: Callable[[int], None],
    latencies: list[float],
) -> None:
    pending = iter(bodies)

    async def sender() -> None:
        for body, count in pending:
            started = time.perf_counter()
            try:
                response = await client.post("/v1/batch", content=body)
            except httpx.HTTPError as exc:
                raise BenchmarkError(f"POST /v1/batch failed: {exc!r}") from exc
            latencies.append(time.perf_counter() - started)
            _check(response, count)
            advance(count)

    await _gather_tasks(sender() for _ in range(clients))


def _check(response: httpx.Response, count: int) -> None:
    if response.status_code != 200:
        raise BenchmarkError(
            f"POST /v1/batch answered {response.status_code}: {response.text[:500]}"
        )
    answer = orjson.loads(response.content)
    if answer.get("accepted") != count or answer.get("duplicates") or answer.get("rejected"):
        raise BenchmarkError(
            f"POST /v1/batch of {count} events did not accept them all: {response.text[:500]}"
        )


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGINT, as Ctrl-C: uvicorn drains, the bus closes, cProfile writes its stats."""
    if process.returncode is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(process.wait(), SERVER_STOP_TIMEOUT_S)
    except TimeoutError:
        say("the ingest server did not stop on SIGINT; killing it")
        process.kill()
        await process.wait()


async def _server_metrics(client: httpx.AsyncClient) -> dict[str, float]:
    response = await client.get("/metrics")
    response.raise_for_status()
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name.endswith(("_sum", "_count")) and (
                sample.name.startswith("milepost_ingest_publish_seconds")
                or sample.labels.get("route") == "/v1/batch"
            ):
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def _server_cpu_cost(phase: Phase, requests: int) -> dict[str, Any]:
    cores = phase.cpu.get("server process CPU (cores)")
    if cores is None:
        return {}
    cpu_seconds = cores * phase.seconds
    return {
        "ingest: server CPU per request (ms)": round(1000 * cpu_seconds / requests, 2),
        "ingest: server CPU per event (us)": round(1e6 * cpu_seconds / phase.events, 1),
    }


def _breakdown(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Where a request's time goes inside the server, from its own histograms."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    requests = delta("milepost_http_request_duration_seconds_count")
    publishes = delta("milepost_ingest_publish_seconds_count")
    if not requests or not publishes:
        return {}
    in_server = delta("milepost_http_request_duration_seconds_sum") / requests
    awaiting_acks = delta("milepost_ingest_publish_seconds_sum") / publishes
    return {
        "ingest: ms per request in the server (incl. waiting for the loop)": round(
            in_server * 1000, 1
        ),
        "ingest: of which awaiting KafkaBus.publish (ms)": round(awaiting_acks * 1000, 1),
    }


def _print_profile(path: Path) -> None:
    if not path.exists():
        say(f"no profile written at {path}")
        return
    say(f"\nserver profile {path}: top functions by own time")
    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(30)
    say(f"inspect further: python -m pstats {path}")


# -- helpers -----------------------------------------------------------------------------


async def _create_workspace(engine: AsyncEngine, name: str) -> IssuedKey:
    async with create_session_factory(engine)() as session:
        issued = await create_workspace(session, name, clock=SystemClock())
        await session.commit()
    return issued


_SEED_POSTGRESQL = """
    INSERT INTO ingest_published_messages (workspace_id, message_id, published_at)
    SELECT :workspace_id, 'seed-' || n, :at FROM generate_series(1, :rows) AS n
"""
_SEED_SQLITE = """
    WITH RECURSIVE seeds(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seeds WHERE n < :rows)
    INSERT INTO ingest_published_messages (workspace_id, message_id, published_at)
    SELECT :workspace_id, 'seed-' || n, :at FROM seeds
"""


async def _seed_ledger(engine: AsyncEngine, workspace_id: str, rows: int) -> None:
    """Fill the ledger as hours of traffic would, then refresh the planner's statistics:
    the figure is then the steady state, not a fresh table whose plans depend on whether
    autovacuum happened to analyse it during the run."""
    if rows:
        say(f"seeding the dedup ledger with {rows:,} message ids")
        sql = _SEED_POSTGRESQL if engine.dialect.name == "postgresql" else _SEED_SQLITE
        statement = text(sql).bindparams(
            bindparam("at", type_=UtcDateTime()), bindparam("rows", type_=Integer())
        )
        async with engine.begin() as connection:
            await connection.execute(
                statement,
                {
                    "workspace_id": workspace_id,
                    "rows": rows,
                    "at": datetime.now(UTC) - LEDGER_SEED_AGE,
                },
            )
    async with engine.begin() as connection:
        await connection.execute(text("ANALYZE ingest_published_messages"))


async def _drop_workspace(engine: AsyncEngine, workspace_id: str) -> int:
    async with create_session_factory(engine)() as session:
        ledger = await session.execute(
            delete(PublishedMessage).where(PublishedMessage.workspace_id == workspace_id)
        )
        await session.execute(delete(WriteKey).where(WriteKey.workspace_id == workspace_id))
        await session.execute(delete(Workspace).where(Workspace.id == workspace_id))
        await session.commit()
    return int(getattr(ledger, "rowcount", 0) or 0)


async def _gather_tasks(coroutines: Iterator[Any]) -> None:
    """Run the coroutines concurrently; the first failure cancels the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except* Exception as failures:
        raise failures.exceptions[0] from None


def _phase(events: int, before: CpuSample, after: CpuSample) -> Phase:
    """The rate and, in cores (1.0 = one core busy all along), who used the CPU."""
    return Phase(events, after.wall - before.wall, cpu_use(before, after, "server process"))


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _open_log(path: Path) -> IO[bytes]:
    return path.open("wb")


BENCHMARK = Benchmark(
    name="ingest",
    summary="POST /v1/batch events/s (separate server process) vs the raw aiokafka producer",
    add_arguments=add_arguments,
    run=run,
)
