"""Whole-pipeline latency: event -> delivered webhook at a fixed offered rate.

The parts run as in production, each in its own process: ``milepost ingest``, ``milepost
engine`` and ``milepost messaging`` on the real broker (fresh topics under a run-unique
``MILEPOST_TOPIC_PREFIX``) and a fresh PostgreSQL database (``milepost db upgrade``). A
workspace is created, the reference platform-merchant path published, and a marketing-system
subscription (no filters: every trigger) points at a webhook sink in this process (raw
asyncio HTTP, ``time.time()`` on arrival).

An open-loop generator offers ``--pipeline-rate`` events/s as Segment ``/v1/batch`` requests
of ``--pipeline-batch`` events, one every ``batch / rate`` seconds whatever the answers take,
for ``--pipeline-warmup`` then ``--pipeline-seconds``. Of every ten events one is a new
merchant's group call (it enrols on the path) and one the ``Merchant Approved`` of a merchant
whose group call ingest accepted at least a second earlier (it completes a node); the rest are
orders and page views of enrolled merchants. Requests are concurrent, so ingest may accept a
later one first: an approval sent before its merchant's group call was accepted could reach
the engine before the merchant is on the path, and rightly trigger nothing. Each delivered
trigger names its ``causing_event_id``; the event id is derived from the message id
(``event_id_for``), so the sink maps it back to the time the request carrying the event was
sent. Latency = sink arrival - that send time, per delivered trigger.

Figures, at ``--pipeline-low-rate`` (measured first) and at ``--pipeline-rate``: event ->
trigger p99 (the trigger's broker timestamp) beside the ingest hop's p99, event -> delivered
p99 beside event -> trigger p99, and the delivered p50, each p99 against issue 17's goal for
the rate (``GOALS_MS``); nothing is asserted. Also per hop, from the broker timestamps of the
event and of its trigger: request -> ingest published, -> engine published the trigger, ->
the sink received it, and each service's event-loop stalls and collection pauses over the
measured window (its ``/metrics``). Triggering events with no delivery ``--pipeline-drain``
seconds after the load stopped are counted, not hidden. A markdown report with a PNG of
latency over time is written under ``.cache/bench/`` (the path is printed). Processes, the
database and the topics are removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import secrets
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from sqlalchemy.engine import make_url
from standardwebhooks import Webhook

from services.messaging.settings import MessagingSettings
from services.node_engine.settings import EngineSettings
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.bus.namespaced import NamespacedBus
from shared.contracts import TOPICS, Topic
from shared.contracts.events import event_id_for
from shared.settings import RuntimeSettings
from tests.benchmarks import Benchmark, BenchmarkError, Figure, Report, say
from tests.benchmarks._pipeline_report import Series, report_folder, write_report
from tests.benchmarks._stalls import Stalls, read_histograms, stalls_between
from tests.benchmarks._steps import StageSteps, steps_between
from tests.benchmarks._system import (
    CpuSample,
    Services,
    at_least,
    busy_before,
    cpu_use,
    kafka_and_postgres,
    percentile,
    process_cpu,
    tail,
)
from tests.benchmarks.engine import PLATFORM_PATH, REFERENCE, _Cleanup, _fresh_database
from tests.processes import RunningServer, milepost, running

GOALS_MS = {
    ("event -> trigger", 1000): 100.0,
    ("event -> delivered", 1000): 250.0,
    ("event -> delivered", 250): 150.0,
}
"""Issue 17's goals for the p99s, by figure and offered rate."""
TRIGGERING_EVERY = 10
"""One group call and one node-completing event in every ten."""
APPROVAL_DELAY_S = 1.0
SIGNATURE_SAMPLE = 200
EMPTY_POLLS = 3
ADMIN_TOKEN_BYTES = 16
PROCESSES = ("ingest", "engine", "messaging")
FAST_PATHS = {
    # the per-channel webhook cap (100/s by default) would queue deliveries, not measure latency
    "MILEPOST_MESSAGING_RATE_LIMITS_PER_SECOND": orjson.dumps({"webhook": 1_000_000}).decode(),
    "MILEPOST_MESSAGING_ALLOW_LOOPBACK_TARGETS": "true",
}


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--pipeline-rate",
        type=at_least(1),
        default=1000,
        metavar="EV_S",
        help="offered events/s for the figure (default: 1000)",
    )
    group.add_argument(
        "--pipeline-low-rate",
        type=at_least(0),
        default=250,
        metavar="EV_S",
        help="a lower offered rate measured first; 0 skips it (default: 250)",
    )
    group.add_argument(
        "--pipeline-seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="measured seconds per rate (default: 30)",
    )
    group.add_argument(
        "--pipeline-warmup",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds offered at the same rate before measuring (default: 5)",
    )
    group.add_argument(
        "--pipeline-batch",
        type=at_least(1),
        default=10,
        metavar="N",
        help="events per /v1/batch request (default: 10)",
    )
    group.add_argument(
        "--pipeline-drain",
        type=float,
        default=60.0,
        metavar="S",
        help="at most this long after the load stops for the last triggers (default: 60)",
    )


# -- the webhook sink ----------------------------------------------------------------------


@dataclass(slots=True)
class Sink:
    """Raw HTTP/1.1 on asyncio: each POST's arrival time, body and signature headers."""

    received: list[tuple[float, bytes, dict[str, str]]] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.time()
                headers: dict[str, str] = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append((arrived, body, headers))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


# -- the load --------------------------------------------------------------------------------


@dataclass(slots=True)
class Load:
    """What one rate sent: each event's id -> the time its request was sent."""

    rate: int
    sent_at: dict[str, float] = field(default_factory=dict)
    measured: set[str] = field(default_factory=set)
    """Events sent in the measured window (not the warm-up)."""
    triggering: set[str] = field(default_factory=set)
    """Measured group calls and approvals: each must cause at least one trigger."""
    measured_from: float = 0.0
    """When the first measured request was sent."""
    failed_requests: int = 0
    accepted: int = 0
    """Measured events ingest answered 200 for."""
    answered_at: float = 0.0
    """When ingest answered the last measured request."""


@dataclass(frozen=True, slots=True)
class _Call:
    body: dict[str, Any]
    triggering: bool
    """Whether it must cause a trigger."""
    joins: int | None = None
    """The merchant a group call enrols."""


class _Calls:
    """Segment calls: new merchants join, are approved once ingest accepted their group call
    a second before, and order."""

    def __init__(self, tag: str, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.tag = tag
        self.monotonic = monotonic
        self.rng = random.Random(tag)
        self.sequence = 0
        self.merchants = 0
        self.accepted: deque[tuple[float, int]] = deque()
        """Merchants whose group call ingest accepted, with when (monotonic), oldest first."""

    def joined(self, merchants: list[int]) -> None:
        """Ingest accepted the group calls of ``merchants`` now."""
        at = self.monotonic()
        self.accepted.extend((at, merchant) for merchant in merchants)

    def take_approvable(self) -> int | None:
        """Take the merchant accepted longest ago, if at least :data:`APPROVAL_DELAY_S` ago."""
        if self.accepted and self.accepted[0][0] <= self.monotonic() - APPROVAL_DELAY_S:
            return self.accepted.popleft()[1]
        return None

    def next(self) -> _Call:
        """The next call."""
        slot = self.sequence % TRIGGERING_EVERY
        self.sequence += 1
        message = f"{self.tag}-{self.sequence:09d}"
        now = datetime.now(UTC).isoformat()
        if slot == 0:
            self.merchants += 1
            account = self.account(self.merchants)
            call = {
                "type": "group",
                "groupId": account,
                "userId": f"{account}-owner",
                "traits": {"name": account, "business_type": "platform"},
                "context": {"traits": {"roles": ["admin", "decision_maker"]}},
            }
            return _Call({**call, "messageId": message, "timestamp": now}, True, self.merchants)
        approved = self.take_approvable() if slot == 1 else None
        if approved is not None:
            account = self.account(approved)
            event, triggering = "Merchant Approved", True
        else:
            account = self.account(self.rng.randint(1, max(1, self.merchants)))
            event, triggering = self.rng.choice(("Order Completed", "Page Viewed")), False
        call = {
            "type": "track",
            "event": event,
            "userId": f"{account}-owner",
            "properties": {"amount": round(self.rng.uniform(5, 400), 2)},
            "context": {"groupId": account},
            "messageId": message,
            "timestamp": now,
        }
        return _Call(call, triggering)

    def account(self, number: int) -> str:
        return f"merchant-{self.tag}-{number:07d}"


async def _offer(
    client: aiohttp.ClientSession,
    workspace_id: str,
    load: Load,
    *,
    tag: str,
    batch: int,
    warmup: float,
    seconds: float,
) -> None:
    """Open loop: request k leaves at start + k * batch / rate, whatever earlier ones take."""
    calls = _Calls(tag)
    interval = batch / load.rate
    pending: set[asyncio.Task[None]] = set()

    async def post(body: bytes, measured: bool, joining: list[int]) -> None:
        try:
            async with client.post("/v1/batch", data=body) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError):
            load.failed_requests += 1
            return
        if response.status != 200:
            load.failed_requests += 1
            return
        calls.joined(joining)
        if measured:
            load.accepted += batch
            load.answered_at = time.time()

    started = time.monotonic()
    measure_from = started + warmup
    end = measure_from + seconds
    sent_requests = 0
    while True:
        due = started + sent_requests * interval
        if due >= end:
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        measured = due >= measure_from
        batch_calls = [calls.next() for _ in range(batch)]
        body = orjson.dumps({"batch": [call.body for call in batch_calls]})
        sent = time.time()
        if measured and not load.measured:
            load.measured_from = sent
        for call in batch_calls:
            event_id = event_id_for(workspace_id, call.body["messageId"])
            load.sent_at[event_id] = sent
            if measured:
                load.measured.add(event_id)
                if call.triggering:
                    load.triggering.add(event_id)
        joining = [call.joins for call in batch_calls if call.joins is not None]
        task = asyncio.create_task(post(body, measured, joining))
        pending.add(task)
        task.add_done_callback(pending.discard)
        sent_requests += 1
    if pending:
        await asyncio.wait(pending, timeout=60)


@dataclass(frozen=True, slots=True)
class Delivered:
    arrived: float
    cause: str
    trigger_id: str


# -- one rate --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    rate: int
    achieved: float
    latencies_ms: list[float]
    events_delivered: int
    triggering_missing: int
    triggering: int
    measured_events: int
    failed_requests: int
    cpu: dict[str, float]
    sent_at: dict[str, float]
    """Send time of each measured event that caused a delivered trigger."""
    delivered: list[Delivered]
    measured_from: float
    stalls: dict[str, Stalls]
    """Each service's event-loop stalls over the measured window."""
    steps: dict[str, list[StageSteps]]
    """Where each service's stages spent their batches' time over the measured window."""

    def summary(self) -> dict[str, Any]:
        ms = self.latencies_ms
        return {
            "offered events/s": self.rate,
            "accepted by ingest events/s": round(self.achieved, 1),
            "events sent (measured)": self.measured_events,
            "triggers delivered": len(ms),
            "events delivered (distinct causes)": self.events_delivered,
            "triggering events never delivered": f"{self.triggering_missing} of {self.triggering}",
            "failed /v1/batch requests": self.failed_requests,
            "p50 ms": round(percentile(ms, 0.5), 1),
            "p90 ms": round(percentile(ms, 0.9), 1),
            "p99 ms": round(percentile(ms, 0.99), 1),
            "max ms": round(max(ms, default=0.0), 1),
            **self.cpu,
        }


async def _measure_rate(
    args: argparse.Namespace,
    rate: int,
    *,
    client: aiohttp.ClientSession,
    sink: Sink,
    workspace_id: str,
    servers: Mapping[str, RunningServer],
    services: Services,
) -> Result:
    load = Load(rate)
    tag = f"r{rate}-{secrets.token_hex(3)}"
    say(
        f"  offering {rate:,} events/s: {args.pipeline_warmup:.0f}s warm-up, "
        f"{args.pipeline_seconds:.0f}s measured"
    )
    warmup_task = asyncio.create_task(asyncio.sleep(args.pipeline_warmup))
    offer = asyncio.create_task(
        _offer(
            client,
            workspace_id,
            load,
            tag=tag,
            batch=args.pipeline_batch,
            warmup=args.pipeline_warmup,
            seconds=args.pipeline_seconds,
        )
    )
    pids = {name: server.process.pid for name, server in servers.items()}
    await warmup_task
    before = CpuSample.take(None, services)
    own_before = {name: process_cpu(pid) for name, pid in pids.items()}
    histograms = {name: await read_histograms(f"{s.url}/metrics") for name, s in servers.items()}
    await offer
    after = CpuSample.take(None, services)
    own_after = {name: process_cpu(pid) for name, pid in pids.items()}
    ended = {name: await read_histograms(f"{s.url}/metrics") for name, s in servers.items()}
    stalls = {name: stalls_between(histograms[name], ended[name]) for name in servers}
    steps = {name: steps_between(histograms[name], ended[name]) for name in servers}
    seconds = max(after.wall - before.wall, 1e-9)
    cpu = cpu_use(before, after, "")
    for name in PROCESSES:
        start, end = own_before.get(name), own_after.get(name)
        if start is not None and end is not None:
            cpu[f"{name} CPU (cores)"] = round((end - start) / seconds, 2)
    other = "anything else on the machine (cores)"
    if other in cpu:  # cpu_use counted the three services as "anything else"
        services_used = sum(cpu.get(f"{name} CPU (cores)", 0.0) for name in PROCESSES)
        cpu[other] = round(max(0.0, cpu[other] - services_used), 2)
    say(f"  load done; draining up to {args.pipeline_drain:.0f}s for the last triggers")
    delivered = await _drain(sink, load, args.pipeline_drain)
    measured = [d for d in delivered if d.cause in load.measured]
    latencies = [1000 * (d.arrived - load.sent_at[d.cause]) for d in measured]
    causes = {d.cause for d in measured}
    window = max(load.answered_at - load.measured_from, 1e-9)
    return Result(
        rate=rate,
        achieved=load.accepted / window,
        latencies_ms=latencies,
        events_delivered=len(causes),
        triggering_missing=len(load.triggering - causes),
        triggering=len(load.triggering),
        measured_events=len(load.measured),
        failed_requests=load.failed_requests,
        cpu=cpu,
        sent_at={d.cause: load.sent_at[d.cause] for d in measured},
        delivered=measured,
        measured_from=load.measured_from,
        stalls=stalls,
        steps=steps,
    )


async def _drain(sink: Sink, load: Load, seconds: float) -> list[Delivered]:
    """Each delivered trigger of this load, once every triggering event has one and a
    second passed with no new delivery, or ``seconds`` after the load stopped."""
    seen = 0
    deadline = time.monotonic() + seconds
    quiet_since = time.monotonic()
    delivered: list[Delivered] = []
    causes: set[str] = set()
    while time.monotonic() < deadline:
        fresh = sink.received[seen:]
        seen += len(fresh)
        for arrived, body, _ in fresh:
            trigger = orjson.loads(body)["data"]
            cause = trigger.get("causing_event_id")
            if cause in load.sent_at:
                delivered.append(Delivered(arrived, cause, trigger["trigger_id"]))
                causes.add(cause)
        if fresh:
            quiet_since = time.monotonic()
        elif load.triggering <= causes and time.monotonic() - quiet_since > 1.0:
            break
        await asyncio.sleep(0.25)
    return delivered


# -- set-up and the report -------------------------------------------------------------------


async def run(args: argparse.Namespace) -> Report:
    bootstrap, server_url = kafka_and_postgres()
    idle_load, notes = await busy_before("the pipeline")
    run_id = secrets.token_hex(4)
    cleanup = _Cleanup(bootstrap, server_url)
    sink = Sink()
    try:
        with tempfile.TemporaryDirectory(prefix="milepost-bench-pipeline-") as tmp:
            return await _measure(
                args,
                bootstrap=bootstrap,
                server_url=server_url,
                run_id=run_id,
                workdir=Path(tmp),
                cleanup=cleanup,
                sink=sink,
                notes=notes,
                idle_load=idle_load,
            )
    finally:
        await sink.stop()
        await cleanup.run()


async def _measure(
    args: argparse.Namespace,
    *,
    bootstrap: str,
    server_url: str,
    run_id: str,
    workdir: Path,
    cleanup: _Cleanup,
    sink: Sink,
    notes: list[str],
    idle_load: float | None,
) -> Report:
    database_url = await _fresh_database(server_url, f"milepost_bench_pipe_{run_id}", cleanup)
    prefix = f"bench-{run_id}."
    admin_token = secrets.token_hex(ADMIN_TOKEN_BYTES)
    env = {
        "MILEPOST_BUS": "kafka",
        "MILEPOST_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MILEPOST_TOPIC_PREFIX": prefix,
        "MILEPOST_DATABASE_URL": database_url,
        "MILEPOST_HOST": "127.0.0.1",
        "MILEPOST_DATA_DIR": str(workdir / "data"),
        "MILEPOST_MESSAGING_ADMIN_TOKEN": admin_token,
        "MILEPOST_ENGINE_GROUP_ID": f"bench-engine-{run_id}",
        "MILEPOST_MESSAGING_GROUP_ID": f"bench-messaging-{run_id}",
        "MILEPOST_MESSAGING_SUBSCRIPTIONS_GROUP_ID": f"bench-subscriptions-{run_id}",
        "MILEPOST_MESSAGING_CONTACTS_GROUP_ID": f"bench-contacts-{run_id}",
        **FAST_PATHS,
    }
    say(f"database {make_url(database_url).database}, topics under {prefix!r}")
    cleanup.topics.extend(f"{prefix}{spec.topic}" for spec in TOPICS)
    workspace = f"bench-{run_id}"
    try:
        await asyncio.to_thread(milepost, "db", "upgrade", env=env)
        await asyncio.to_thread(milepost, "kafka", "ensure-topics", env=env)
        created = await asyncio.to_thread(milepost, "workspace", "create", workspace, env=env)
        path_file = str(REFERENCE / f"{PLATFORM_PATH}.yaml")
        await asyncio.to_thread(milepost, "paths", "publish", path_file, "-w", workspace, env=env)
    except AssertionError as exc:
        raise BenchmarkError(str(exc)) from exc
    lines = created.stdout.strip().splitlines()
    write_key = lines[-1].strip()
    workspace_id = lines[0].split(" id ")[1].split(",")[0]
    url = await sink.start()
    services = Services.find(bootstrap, database_url)
    used = _settings_used(env)
    with contextlib.ExitStack() as stack:
        servers = _start(stack, env, workdir)
        async with httpx.AsyncClient(
            base_url=servers["messaging"].url,
            headers={"Authorization": f"Bearer {admin_token}"},
            timeout=10.0,
        ) as admin:
            answer = await admin.post(
                f"/api/messaging/workspaces/{workspace}/subscriptions",
                json={"url": url, "description": "pipeline benchmark sink"},
            )
        if answer.status_code != 201 and answer.status_code != 200:
            raise BenchmarkError(f"creating the subscription: {answer.status_code} {answer.text}")
        secret = answer.json()["secret"]
        auth = base64.b64encode(f"{write_key}:".encode()).decode()
        results: list[Result] = []
        # aiohttp, not httpx: the generator shares the machine's two cores with the
        # services, and httpx takes about ten times the CPU per request
        async with aiohttp.ClientSession(
            base_url=servers["ingest"].url,
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=30.0),
            connector=aiohttp.TCPConnector(limit=64),
        ) as client:
            rates = [r for r in (args.pipeline_low_rate, args.pipeline_rate) if r]
            for rate in rates:
                try:
                    results.append(
                        await _measure_rate(
                            args,
                            rate,
                            client=client,
                            sink=sink,
                            workspace_id=workspace_id,
                            servers=servers,
                            services=services,
                        )
                    )
                except Exception:
                    for name in PROCESSES:
                        log = workdir / f"{name}.log"
                        say(f"{name} log (last lines):\n{tail(log)}")
                    raise
                say(f"  {rate:,} events/s: p99 {results[-1].summary()['p99 ms']} ms")
        say("  reading the broker timestamps of events and triggers for the stage breakdown")
        published = await _published_at(bootstrap, prefix, run_id)
    stages = [_stages(result, published) for result in results]
    signed, valid = _check_signatures(sink, secret)
    if valid < signed:
        notes.append(f"{signed - valid} of {signed} sampled signatures did not verify")
    series = [_series(result, published) for result in results]
    report = _report(args, results, series, stages, used, signed, valid, idle_load, notes)
    folder = report_folder(run_id)
    written = write_report(
        folder,
        report,
        series,
        {r.rate: r.stalls for r in results},
        {r.rate: r.steps for r in results},
    )
    say(f"  report: {written} (chart: {folder / 'latency.png'})")
    return Report(
        report.benchmark,
        report.title,
        report.figures,
        {**report.details, "report": str(written)},
        report.notes,
    )


def _series(result: Result, published: Mapping[str, float]) -> Series:
    """Each delivery's and each published trigger's latency by when its event was sent."""
    to_trigger: dict[str, tuple[float, float]] = {}
    to_delivery: list[tuple[float, float]] = []
    ingest: dict[str, float] = {}
    for delivery in result.delivered:
        sent = result.sent_at[delivery.cause]
        at = sent - result.measured_from
        to_delivery.append((at, 1000 * (delivery.arrived - sent)))
        trigger_at = published.get(delivery.trigger_id)
        if trigger_at is not None:
            to_trigger[delivery.trigger_id] = (at, 1000 * (trigger_at - sent))
        event_at = published.get(delivery.cause)
        if event_at is not None:
            ingest[delivery.cause] = 1000 * (event_at - sent)
    return Series(result.rate, list(to_trigger.values()), to_delivery, list(ingest.values()))


async def _published_at(bootstrap: str, prefix: str, run_id: str) -> dict[str, float]:
    """When each event (by event id) and each trigger (by trigger id) was published: the
    record's CreateTime, stamped by ingest's and the engine's producers."""
    bus = NamespacedBus(KafkaBus(KafkaOptions(bootstrap_servers=bootstrap)), prefix)
    consumer = await bus.subscribe([Topic.EVENTS, Topic.TRIGGERS], group_id=f"bench-{run_id}")
    published: dict[str, float] = {}
    empty = 0
    try:
        while empty < EMPTY_POLLS:
            records = await consumer.poll(max_records=5_000, timeout_ms=1_000)
            empty = 0 if records else empty + 1
            for record in records:
                value = orjson.loads(record.value)
                key = value.get("event_id") or value.get("trigger_id")
                if key:
                    published[key] = record.timestamp_ms / 1000
    finally:
        await consumer.close()
    return published


def _stages(result: Result, published: Mapping[str, float]) -> dict[str, Any]:
    """p50 / p99 of each hop: request sent -> ingest published the event -> the engine
    published the trigger -> the sink received it."""
    hops: dict[str, list[float]] = {"ingest": [], "engine": [], "messaging": []}
    for delivery in result.delivered:
        event_at, trigger_at = published.get(delivery.cause), published.get(delivery.trigger_id)
        if event_at is None or trigger_at is None:
            continue
        hops["ingest"].append(1000 * (event_at - result.sent_at[delivery.cause]))
        hops["engine"].append(1000 * (trigger_at - event_at))
        hops["messaging"].append(1000 * (delivery.arrived - trigger_at))
    return {
        f"{result.rate} ev/s: {hop} p50 / p99 ms": (
            f"{percentile(values, 0.5):,.0f} / {percentile(values, 0.99):,.0f}"
        )
        for hop, values in hops.items()
    }


def _start(
    stack: contextlib.ExitStack, env: dict[str, str], workdir: Path
) -> dict[str, RunningServer]:
    """The three services, each in its own process, stopped when the stack closes."""
    servers: dict[str, RunningServer] = {}
    for name in PROCESSES:
        say(f"starting milepost {name}")
        servers[name] = stack.enter_context(running(name, env, workdir / f"{name}.log"))
    return servers


def _settings_used(env: Mapping[str, str]) -> dict[str, Any]:
    """The latency-relevant settings the services ran with (their defaults unless set)."""
    with _environment(env):
        runtime, engine, messaging = RuntimeSettings(), EngineSettings(), MessagingSettings()
    return {
        "kafka_linger_ms": runtime.kafka_linger_ms,
        "engine poll_timeout_ms": engine.poll_timeout_ms,
        "engine max_batch_records": engine.max_batch_records,
        "messaging poll_timeout_ms": messaging.poll_timeout_ms,
        "messaging max_batch_records": messaging.max_batch_records,
        "messaging dispatch_interval_ms": messaging.dispatch_interval_ms,
        "messaging dispatch_batch": messaging.dispatch_batch,
        "messaging dispatch_concurrency": messaging.dispatch_concurrency,
        "messaging webhook rate limit /s": messaging.rate_limits_per_second.get("webhook"),
    }


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _check_signatures(sink: Sink, secret: str) -> tuple[int, int]:
    """Every delivery carries the Standard Webhooks headers; a sample is verified."""
    unsigned = [h for _, _, h in sink.received if not {"webhook-id", "webhook-signature"} <= set(h)]
    if unsigned:
        raise BenchmarkError(f"{len(unsigned)} deliveries came without a signature")
    step = max(1, len(sink.received) // SIGNATURE_SAMPLE)
    sample = sink.received[::step]
    webhook = Webhook(secret)
    valid = 0
    for _, body, headers in sample:
        with contextlib.suppress(Exception):
            webhook.verify(body, headers)
            valid += 1
    return len(sample), valid


def _report(
    args: argparse.Namespace,
    results: list[Result],
    series: list[Series],
    stages: list[dict[str, Any]],
    used: dict[str, Any],
    signed: int,
    valid: int,
    idle_load: float | None,
    notes: list[str],
) -> Report:
    details: dict[str, Any] = {
        "events per request": args.pipeline_batch,
        "measured seconds per rate": args.pipeline_seconds,
        "warm-up seconds": args.pipeline_warmup,
        "triggering share": f"2 in {TRIGGERING_EVERY} (group call, Merchant Approved)",
        "signatures verified (sample)": f"{valid} of {signed}",
    }
    if idle_load is not None:
        details["machine busy before the run (cores)"] = round(idle_load, 2)
    details.update({f"setting {k}": v for k, v in used.items()})
    for result, hops in zip(results, stages, strict=True):
        details.update({f"{result.rate} ev/s: {k}": v for k, v in result.summary().items()})
        details.update(hops)
    for result in results:
        if result.triggering_missing:
            notes.append(
                f"at {result.rate:,} ev/s, {result.triggering_missing:,} of "
                f"{result.triggering:,} triggering events had no delivery "
                f"{args.pipeline_drain:.0f}s after the load stopped (not in the percentiles)"
            )
    figures: list[Figure] = []
    for result, one in zip(results, series, strict=True):
        figures += _rate_figures(result, one, notes)
    for result in results:
        for process, found in result.stalls.items():
            details.update(found.summary(f"{result.rate} ev/s, {process}"))
        for process, found_stages in result.steps.items():
            for stage in found_stages:
                details.update(stage.summary(f"{result.rate} ev/s, {process}"))
    notes.append(
        "the webhook rate limit is raised for the run and private targets allowed "
        "(the sink is on 127.0.0.1); every other setting is the default"
    )
    return Report(
        "pipeline",
        "Whole pipeline: event -> trigger and event -> delivered webhook latency at a fixed "
        "offered rate",
        figures,
        details,
        notes=notes,
    )


def _rate_figures(result: Result, series: Series, notes: list[str]) -> list[Figure]:
    """At one rate: event -> trigger p99 beside the ingest hop's p99 (the request until the
    event is on the broker), event -> delivered p99 beside event -> trigger p99, and the
    delivered p50; each p99 against issue 17's goal for the rate, if it has one."""
    to_trigger = [ms for _, ms in series.to_trigger]
    ingest = list(series.ingest)
    p99_trigger = percentile(to_trigger, 0.99)
    p99_delivered = percentile(result.latencies_ms, 0.99)
    for name, value in (("event -> trigger", p99_trigger), ("event -> delivered", p99_delivered)):
        goal = GOALS_MS.get((name, result.rate))
        if goal is not None:
            verdict = "meets" if value <= goal else "MISSES"
            notes.append(
                f"at {result.rate:,} ev/s the {name} p99 of {value:,.0f} ms {verdict} the goal "
                f"of <= {goal:,.0f} ms"
            )
    every = (
        "every event delivered"
        if not result.triggering_missing
        else (
            f"{result.triggering_missing:,} of {result.triggering:,} triggering events NOT delivered"
        )
    )
    notes.append(f"at {result.rate:,} ev/s: {every}")

    def goal_of(name: str) -> str:
        goal = GOALS_MS.get((name, result.rate))
        return "" if goal is None else f", goal <= {goal:,.0f} ms"

    return [
        Figure(
            f"event -> trigger p99 at {result.rate} ev/s{goal_of('event -> trigger')} "
            "(limit: request -> event on the broker)",
            p99_trigger,
            "ms",
            percentile(ingest, 0.99),
        ),
        Figure(
            f"event -> delivered p99 at {result.rate} ev/s{goal_of('event -> delivered')} "
            "(limit: event -> trigger)",
            p99_delivered,
            "ms",
            p99_trigger,
        ),
        Figure(
            f"event -> delivered p50 at {result.rate} ev/s",
            percentile(result.latencies_ms, 0.5),
            "ms",
        ),
    ]


BENCHMARK = Benchmark(
    "pipeline",
    "event -> delivered webhook latency p50/p99 through ingest, engine and messaging",
    add_arguments,
    run,
)
