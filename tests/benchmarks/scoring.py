"""Scoring figures on the real broker and PostgreSQL, in one run.

The engine benchmark's realistic mix (:func:`tests.benchmarks.engine._mix`: half platform
merchants, half SaaS companies with CRM facts, each account's events in order, accounts
interleaved by time) for ``--scoring-accounts`` accounts, on fresh topics under a
run-unique prefix and a fresh database with one workspace, both reference growth paths and
the reference metric definitions (so tiers and diagnostics run too).

First the engine's enrolment triggers (one per account, putting it on its reference path)
are published and applied, untimed, as a worker that has been running has applied them:
the timed phase then scores events only, whichever topic the broker serves first (applied
in the middle of the mix, the enrolments' 20,000 first evaluations fell in the timed phase
in some runs and after it in others). Then the mix is published.

The limit: a raw ``AIOKafkaConsumer`` reading the mix's topic with ``getmany`` and no
processing (the engine benchmark's, with the scoring consumer's batch size and poll
timeout), the fastest of ``--engine-raw-repeats`` runs. The figure: the same
:class:`ScoringWorker` in this process consuming the mix, from its first checkpoint to the
last record applied, with the collector tuned as a service tunes it (``tuned_gc``): fold
into day buckets, snapshot, health, signals, tiers, diagnostics, the checkpoint
transaction, the score events published. Goal: >= 0.04 x the raw consumer, as for the
engine. Beside it, the CPU the run's database backends spent per event scored, against
scoring's own. Each evaluation of a touched account is timed too (the worker's
``evaluate``, wrapped; CPU time of this thread).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

import services.scoring.processing.worker as worker_module
from services.node_engine.paths.service import load_catalog as load_growth_paths
from services.node_engine.settings import EngineSettings
from services.scoring.app import publish_reference_metrics
from services.scoring.catalog.service import load_catalog
from services.scoring.processing.worker import INPUT_TOPICS, ScoringMetrics, ScoringWorker
from services.scoring.settings import ScoringSettings
from shared.bus import Consumer
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.bus.namespaced import NamespacedBus
from shared.clock import SystemClock
from shared.contracts import Topic, TriggerEnvelope, TriggerKind
from shared.db import create_engine, create_session_factory
from shared.observability.stalls import tuned_gc
from shared.runtime import Resources
from tests.benchmarks import Benchmark, BenchmarkError, Figure, Report, progress
from tests.benchmarks._system import (
    CpuSample,
    Phase,
    Services,
    at_least,
    backends_cpu,
    backends_used,
    busy_before,
    cpu_use,
    kafka_and_postgres,
)
from tests.benchmarks.engine import (
    DATABASE_BACKENDS,
    STALL_TIMEOUT_S,
    Keyed,
    Mix,
    _Cleanup,
    _fresh_database,
    _mix,
    _prepare_database,
    _producer,
    _provision_topics,
    _publish,
    _raw_consume,
    drain,
)

GOAL_RATIO = 0.04
"""The goal for one process, as for the engine."""


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--scoring-accounts",
        type=at_least(1),
        default=20_000,
        help="accounts in the mix, half on each reference path (default: %(default)s)",
    )
    group.add_argument(
        "--scoring-seed", type=int, default=11, help="random seed of the mix (default: %(default)s)"
    )


async def run(args: argparse.Namespace) -> Report:
    bootstrap, server_url = kafka_and_postgres()
    _, notes = await busy_before("the broker, the database and scoring")
    cleanup = _Cleanup(bootstrap, server_url)
    try:
        return await _measure(args, bootstrap, server_url, cleanup, notes)
    finally:
        await cleanup.run()


async def _measure(
    args: argparse.Namespace,
    bootstrap: str,
    server_url: str,
    cleanup: _Cleanup,
    notes: list[str],
) -> Report:
    run_id = secrets.token_hex(4)
    workspace = f"bench{run_id}"
    prefix = f"bench-scoring-{run_id}."
    database_url = await _fresh_database(server_url, f"milepost_bench_scoring_{run_id}", cleanup)
    await _prepare_database(database_url, workspace)
    await _provision_topics(bootstrap, prefix, cleanup)
    services = Services.find(bootstrap, database_url)
    settings = ScoringSettings(group_id=f"bench-scoring-{run_id}")
    mix = _mix(random.Random(args.scoring_seed), workspace, args.scoring_accounts)
    enrolments = _enrolments(workspace, mix)
    topic = f"{prefix}{Topic.ACCOUNT_EVENTS}"
    polling = EngineSettings(
        poll_timeout_ms=settings.poll_timeout_ms, max_batch_records=settings.max_batch_records
    )
    db = create_engine(database_url, pool_size=4)
    bus = NamespacedBus(KafkaBus(KafkaOptions(bootstrap_servers=bootstrap)), prefix)
    registry = CollectorRegistry()
    try:
        worker = await _started_worker(bus, db, registry, settings, workspace)
        producer = await _producer(bootstrap)
        try:
            await _publish(producer, f"{prefix}{Topic.TRIGGERS}", enrolments, None)
            await _enrol(worker, bus, settings.group_id, len(enrolments))
            enrolled = _counts(registry)
            await _publish(producer, topic, mix.records, "publishing the mix")
        finally:
            await producer.stop()
        raw_runs = [
            await _raw_consume(bootstrap, topic, len(mix.records), polling, services, attempt, args)
            for attempt in range(1, args.engine_raw_repeats + 1)
        ]
        raw = max(raw_runs, key=lambda phase: phase.rate)
        consumer = await bus.subscribe(list(INPUT_TOPICS), group_id=settings.group_id)
        try:
            with tuned_gc(), _timed_evaluations() as evaluations:
                scored = await _drain(worker, consumer, len(mix.records), services, db)
        finally:
            await consumer.close()
    finally:
        await bus.close()
        await db.dispose()

    ended = _counts(registry)
    mixed = {name: ended[name] - enrolled[name] for name in ended}
    details: dict[str, object] = {
        "accounts": args.scoring_accounts,
        "events": len(mix.records),
        "events per account": round(len(mix.records) / args.scoring_accounts, 2),
        "enrolment triggers (the engine's, applied before the timed phase)": len(enrolments),
        "enrolment: score events": {kind: int(enrolled[kind]) for kind in SCORE_KINDS},
        "raw runs (events/s)": [round(r.rate) for r in raw_runs],
        "batch size": settings.max_batch_records,
        "checkpoints": int(mixed["checkpoints"]),
        "mean checkpoint (ms)": round(
            1000 * mixed["checkpoint seconds"] / max(1.0, mixed["checkpoints"]), 1
        ),
        "records scored": int(mixed["records scored"]),
        "score events": {kind: int(mixed[kind]) for kind in SCORE_KINDS},
        "evaluations (touched accounts scored)": evaluations.calls,
        "evaluation: mean CPU us per touched account": round(evaluations.mean_us, 1),
        **{f"scoring: {k}": v for k, v in scored.cpu.items()},
        **{f"raw: {k}": v for k, v in raw.cpu.items()},
    }
    return Report(
        benchmark="scoring",
        title=f"scoring: {args.scoring_accounts:,} accounts of the engine's mix, beside the "
        "raw consumer",
        figures=[
            Figure("raw aiokafka getmany, no processing (the limit)", raw.rate, "events/s"),
            Figure("scoring, one process", scored.rate, "events/s", raw.rate, GOAL_RATIO),
            Figure(
                "PostgreSQL CPU per scored event (limit: scoring's own CPU per event)",
                _per_event_us(scored, DATABASE_BACKENDS),
                "us",
                _per_event_us(scored, PROCESS_CPU),
            ),
        ],
        details=details,
        notes=notes,
    )


SCORE_KINDS = ("score_changed", "risk_raised", "risk_cleared", "tier_changed", "diagnosis")


def _counts(registry: CollectorRegistry) -> dict[str, float]:
    """The worker's counters the report reads: checkpoints, their seconds, the records
    scored and the score events by kind."""

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    return {
        "checkpoints": sample("milepost_scoring_batch_seconds_count"),
        "checkpoint seconds": sample("milepost_scoring_batch_seconds_sum"),
        "records scored": sample("milepost_scoring_records_total", outcome="scored"),
        **{kind: sample("milepost_scoring_score_events_total", kind=kind) for kind in SCORE_KINDS},
    }


PROCESS_CPU = "benchmark process CPU (cores)"
"""Scoring runs in the benchmark's own process."""


def _per_event_us(phase: Phase, cores: str) -> float:
    """Microseconds of CPU per event of the ``cores`` measured over ``phase``."""
    return 1e6 * phase.cpu[cores] / max(phase.rate, 1e-9)


def _enrolments(workspace: str, mix: Mix) -> list[Keyed]:
    """The engine's ``stage_entered`` trigger putting each account of the mix on its
    reference path, as the engine publishes it (scoring learns enrolment from it)."""
    records: list[Keyed] = []
    for path_id, accounts in (("platform-merchant", mix.platform), ("saas-account", mix.saas)):
        for account in accounts:
            trigger = TriggerEnvelope(
                trigger_id=f"bench-enrolled-{account}",
                workspace_id=workspace,
                account_id=account,
                path_id=path_id,
                path_version=1,
                stage="joined",
                kind=TriggerKind.STAGE_ENTERED,
                reason="the account joined",
                occurred_at=datetime.now(UTC),
            )
            records.append((trigger.key.encode(), trigger.model_dump_json().encode(), ()))
    return records


class _Evaluations:
    """How many evaluations the worker ran and the CPU time they took (this thread's, so
    other processes on the machine do not inflate it)."""

    calls = 0
    seconds = 0.0

    @property
    def mean_us(self) -> float:
        return 1e6 * self.seconds / max(1, self.calls)


@contextlib.contextmanager
def _timed_evaluations() -> Iterator[_Evaluations]:
    """Time each call of the worker's ``evaluate`` (one per touched account and batch)."""
    found = _Evaluations()
    namespace = vars(worker_module)
    original = namespace["evaluate"]

    def timed(**arguments: Any) -> Any:
        started = time.thread_time()
        try:
            return original(**arguments)
        finally:
            found.seconds += time.thread_time() - started
            found.calls += 1

    namespace["evaluate"] = timed
    try:
        yield found
    finally:
        namespace["evaluate"] = original


async def _started_worker(
    bus: NamespacedBus,
    db: AsyncEngine,
    registry: CollectorRegistry,
    settings: ScoringSettings,
    workspace: str,
) -> ScoringWorker:
    """A worker on ``db`` and the started ``bus``, the workspace's reference metric
    definitions published first."""
    await bus.start()
    sessions = create_session_factory(db)
    await publish_reference_metrics(
        Resources(bus, db, sessions, SystemClock(), registry), workspace
    )
    return ScoringWorker(
        bus=bus,
        sessions=sessions,
        clock=SystemClock(),
        settings=settings,
        load_catalog=load_catalog,
        load_paths=load_growth_paths,
        metrics=ScoringMetrics(registry),
    )


async def _enrol(worker: ScoringWorker, bus: NamespacedBus, group_id: str, total: int) -> None:
    """Apply the ``total`` enrolment triggers before the mix is published (untimed), as a
    worker that has been running has: every account's first evaluation on its path is
    done, and the timed phase scores events only, whichever topic the broker serves
    first. The worker then leaves the group; the timed phase's consumer joins it again."""
    consumer = await bus.subscribe(list(INPUT_TOPICS), group_id=group_id)
    await drain(worker, consumer, total, "enrolling the accounts", Topic.TRIGGERS, "triggers")
    await worker.stream.leave(consumer)


async def _drain(
    worker: ScoringWorker, consumer: Consumer, total: int, services: Services, db: AsyncEngine
) -> Phase:
    """Step the worker as it runs (each checkpoint overlapping the next batch) until it has
    applied every record; timed from its first checkpoint (those records not counted), as
    the raw consumer is from its first batch, to its last checkpoint's end. Also the CPU of
    the database's backends over the same span."""
    overlap = worker.overlaps_checkpoints()
    backends = await backends_cpu(db)
    applied = 0
    first: tuple[int, CpuSample] | None = None
    moved_at = time.monotonic()
    with progress("scoring the mix", total, "events") as advance:
        while applied < total:
            await worker.stream.step(consumer, overlap=overlap)
            now = sum(n for tp, n in worker.applied.items() if tp.topic == Topic.ACCOUNT_EVENTS)
            if now > applied:
                advance(now - applied)
                applied, moved_at = now, time.monotonic()
                if first is None:
                    first = (now, CpuSample.take(None, services))
                    backends = await backends_cpu(db)
            elif time.monotonic() - moved_at > STALL_TIMEOUT_S:
                raise BenchmarkError(f"scoring: no progress at {applied:,} of {total:,}")
    await worker.stream.settle()
    end = CpuSample.take(None, services)
    used = backends_used(backends, await backends_cpu(db))
    assert first is not None
    counted, begin = first
    cpu = cpu_use(begin, end, "scoring")
    cpu[DATABASE_BACKENDS] = round(used / max(end.wall - begin.wall, 1e-9), 3)
    return Phase(total - counted, end.wall - begin.wall, cpu)


BENCHMARK = Benchmark(
    name="scoring",
    summary="scoring events/s vs raw aiokafka getmany on the engine's realistic mix",
    add_arguments=add_arguments,
    run=run,
)
