"""Node engine figures on the real broker and PostgreSQL, in one run.

Everything runs on a fresh database (migrated, one workspace, both reference paths
published) and on fresh topics under a run-unique topic prefix (``MILEPOST_TOPIC_PREFIX``),
so nothing left on the broker by earlier runs is read.

1. Throughput. A realistic mix for ``--engine-accounts`` accounts, half platform merchants
   (group call, Merchant Approved, profile, payout account, listings, orders with amounts)
   and half SaaS companies (CRM deal stages, contacts, contracts and invoices as ingest
   publishes CloudEvents, admins inviting users, end users creating reports), each
   account's events in order and all accounts interleaved by time, is published with a
   raw ``AIOKafkaProducer``. The limit: a raw ``AIOKafkaConsumer`` reading that topic with
   ``getmany`` and no processing, in a fresh group from the beginning to the end; the
   fastest of ``--engine-raw-repeats`` runs. The figure: one ``milepost engine`` process
   consuming the same topic from the beginning, from its first applied offset to the last
   (``engine_applied_offsets`` against the topic's end offsets). Goal: >= 0.04 x the raw
   consumer (10,000 events/s against this machine's raw ``getmany``).
2. Timers, with that engine process still running: ``--engine-load-events`` follow-up
   events before and after ``--engine-pending-timers`` far-future timers are added (COPY),
   for events/s with and without them; then ``--engine-due-timers`` due timers for accounts
   whose node is active, due over the next ``--engine-due-spread`` seconds, once with the
   engine idle and once while it consumes follow-up events. A firing's lag is the broker
   timestamp of its ``node_overdue`` trigger minus the timer's due time (``occurred_at`` has
   whole seconds only, so it is a cross-check). Goal: p99 <= 1 s.
3. Memory. An :class:`EngineWorker` in this process, on the throughput run's database,
   loads the states of ``--engine-memory-accounts`` accounts for their events under
   ``tracemalloc``; the figure is what dropping ``worker.states`` frees, per account. For
   comparison, a worker processes ``--engine-slice-accounts`` accounts on its own database
   (states built by transitions rather than decoded); also the stored size of a state and
   the engine process's resident memory. Goal: <= 1 KiB per account.

``--engine-profile FILE`` also runs an in-process worker on that slice under cProfile (its
own database and group) and prints the top functions. The databases and topics this
run creates are dropped and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import math
import os
import pstats
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

import services.node_engine as node_engine_package
from services.migrations import upgrade_to_head
from services.node_engine.accounts.encoding import decode_state
from services.node_engine.core.state import NodeStatus
from services.node_engine.paths.service import load_catalog, publish
from services.node_engine.processing.steps import decode
from services.node_engine.processing.worker import INPUT_TOPICS, EngineMetrics, EngineWorker
from services.node_engine.settings import EngineSettings
from shared.attribution.stage import account_event_record
from shared.bus import ConsumedRecord, TopicPartition
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.bus.namespaced import NamespacedBus
from shared.bus.partitioning import partition_for
from shared.clock import SystemClock
from shared.consuming.origins import origin_header
from shared.consuming.stream import Handler
from shared.contracts import TOPICS, EventEnvelope, EventType, Topic
from shared.contracts.crm import (
    ContactUpserted,
    ContractSigned,
    CrmData,
    DealStageChanged,
    InvoicePaid,
)
from shared.contracts.events import EventRecord, event_id_for
from shared.db import create_engine, create_session_factory
from shared.errors import BusUnavailable
from shared.identity import Membership, attribute
from shared.observability.tracing import Headers
from shared.tenancy.models import Workspace
from tests.benchmarks import Benchmark, BenchmarkError, Figure, Report, progress, say
from tests.benchmarks._stalls import (
    STALL_GOAL_MS,
    Histogram,
    Stalls,
    read_histograms,
    stalls_between,
)
from tests.benchmarks._steps import StageSteps, steps_between
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
    percentile,
    process_rss,
    tail,
)
from tests.processes import free_port

GOAL_RATIO = 0.04
"""The goal for one process: 10,000 events/s against about 250,000 raw."""
SCALING_GOAL = 1.8
"""Two engine processes on this machine against one (issue 17)."""
DATABASE_GOAL_US = 60.0
WARMUP_SHARE = 0.1
"""The share of the mix applied before the engine's events/s are timed."""
DATABASE_BACKENDS = "database backends of the run's database CPU (cores)"
MEMORY_GOAL_BYTES = 1024
LAG_GOAL_MS = 1000.0
MEMORY_SITES = 6
PROFILE_ENV = "MILEPOST_BENCH_PROFILE_ENGINE"
ORIGIN_PARTITIONS = 12
"""Partitions of ``milepost.events`` the mix's events are placed on, for their origins."""
Keyed = tuple[bytes, bytes, Headers]
"""A record to publish: key, value and headers."""
REFERENCE = Path(node_engine_package.__file__).parent / "paths" / "reference"
PATH_FILES = ("platform-merchant.yaml", "saas-account.yaml")
PLATFORM_PATH = "platform-merchant"
SAAS_PATH = "saas-account"
PARTITIONS = next(spec.partitions for spec in TOPICS if spec.topic == Topic.EVENTS)
LIBRARY = {"name": "analytics-python", "version": "2.3.2"}
CATEGORIES = ("fashion", "home", "electronics", "beauty", "sports", "food")
INDUSTRIES = ("logistics", "retail", "fintech", "health", "education", "media")
PLANS = ("starter", "growth", "business", "enterprise")
START_TIMEOUT_S = 60.0
STALL_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.1
DUE_LEAD_S = 2
"""The first due timer is due this many whole seconds after it is written."""
FIRE_DEADLINE_S = 30.0
"""How long after the last due time the run waits for the last trigger."""
PENDING_HORIZON = (3_600, 90 * 86_400)
"""Far-future timers are due between an hour and 90 days from now, as a path's timers are."""
PENDING_NODES = {
    PLATFORM_PATH: ("complete_profile", "first_listing", "first_order", "ten_orders"),
    SAAS_PATH: ("demo_held", "contract_signed", "admin_invited_users", "key_feature_seats"),
}
TIMER_COLUMNS = (
    "timer_id",
    "partition",
    "due_at",
    "workspace_id",
    "account_id",
    "path_id",
    "path_version",
    "kind",
    "node",
    "visit",
    "level",
)


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--engine-accounts",
        type=at_least(1),
        default=100_000,
        help="accounts in the throughput mix, half on each reference path (default: %(default)s)",
    )
    group.add_argument(
        "--engine-memory-accounts",
        type=at_least(1),
        default=20_000,
        help="accounts of the mix whose states an in-process worker loads for the memory "
        "figure (default: %(default)s)",
    )
    group.add_argument(
        "--engine-slice-accounts",
        type=at_least(1),
        default=2_000,
        help="accounts an in-process worker processes under tracemalloc on its own database "
        "(memory of states built by processing; the --engine-profile sample) "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--engine-pending-timers",
        type=at_least(0),
        default=1_000_000,
        help="far-future timers added before the timer figures (default: %(default)s)",
    )
    group.add_argument(
        "--engine-due-timers",
        type=at_least(1),
        default=2_000,
        help="due timers per lag measurement, idle and under load (default: %(default)s)",
    )
    group.add_argument(
        "--engine-due-spread",
        type=at_least(1),
        default=10,
        help="seconds over which the due timers fall due (default: %(default)s)",
    )
    group.add_argument(
        "--engine-load-events",
        type=at_least(1),
        default=10_000,
        help="follow-up events per batch for the with/without-timers comparison and the "
        "lag under load (default: %(default)s)",
    )
    group.add_argument(
        "--engine-raw-repeats",
        type=at_least(1),
        default=2,
        help="raw consumer runs; the fastest is the limit (default: %(default)s)",
    )
    group.add_argument(
        "--engine-seed", type=int, default=7, help="random seed of the mix (default: %(default)s)"
    )
    group.add_argument(
        "--engine-profile",
        type=Path,
        metavar="FILE",
        default=Path(os.environ[PROFILE_ENV]) if os.environ.get(PROFILE_ENV) else None,
        help=f"also run an in-process worker on the slice under cProfile, write the stats "
        f"to FILE and print the top functions (or set {PROFILE_ENV})",
    )


# -- the run ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mix:
    """A workload, serialised before any clock starts."""

    records: list[Keyed]
    """(key, value, headers) in publishing order."""
    platform: list[str]
    saas: list[str]
    kinds: Counter[str]
    origins: _Origins
    """Where the mix's events were on ``milepost.events``; later events come after them."""


@dataclass(slots=True)
class Lags:
    """One set of due timers and what became of them."""

    label: str
    timers: int
    broker_ms: list[float]
    """Broker timestamp of each trigger minus its due time."""
    occurred_s: list[float]
    """``occurred_at`` minus the due time (whole seconds)."""
    engine_mean_ms: float | None = None
    """The engine's own ``milepost_engine_timer_fire_lag_seconds``, mean over the set."""
    during_load: int | None = None
    """Triggers published before the concurrent batch of events was all applied."""

    @property
    def missing(self) -> int:
        return self.timers - len(self.broker_ms)


@dataclass(frozen=True, slots=True)
class CacheMemory:
    """What an in-process worker's caches hold for some accounts."""

    accounts: int
    states: int
    """Accounts on a path (the cache also keeps ``None`` for a path an account is not on)."""
    entries: int
    states_bytes: int
    """What dropping ``worker.states`` frees."""
    facts: int
    facts_bytes: int
    """What dropping ``worker.facts`` (the accounts' facts) frees."""
    sites: list[tuple[str, int]]
    """The source lines that allocated the most of ``states_bytes``."""

    @property
    def per_account(self) -> float:
        return self.states_bytes / max(1, self.accounts)


async def run(args: argparse.Namespace) -> Report:
    bootstrap, server_url = kafka_and_postgres()
    idle_load, notes = await busy_before("the broker, the database and the engine")
    run_id = secrets.token_hex(4)
    cleanup = _Cleanup(bootstrap, server_url)
    try:
        with tempfile.TemporaryDirectory(prefix="milepost-bench-engine-") as tmp:
            return await _measure(
                args,
                bootstrap=bootstrap,
                server_url=server_url,
                run_id=run_id,
                workdir=Path(tmp),
                cleanup=cleanup,
                notes=notes,
                idle_load=idle_load,
            )
    finally:
        await cleanup.run()


async def _measure(
    args: argparse.Namespace,
    *,
    bootstrap: str,
    server_url: str,
    run_id: str,
    workdir: Path,
    cleanup: _Cleanup,
    notes: list[str],
    idle_load: float | None,
) -> Report:
    workspace = f"bench{run_id}"
    prefix = f"bench-{run_id}."
    database_url = await _fresh_database(server_url, f"milepost_bench_{run_id}", cleanup)
    await _prepare_database(database_url, workspace)
    await _provision_topics(bootstrap, prefix, cleanup)
    services = Services.find(bootstrap, database_url)
    settings = EngineSettings(group_id=f"bench-engine-{run_id}")

    mix = _mix(random.Random(args.engine_seed), workspace, args.engine_accounts)
    topic = f"{prefix}{Topic.ACCOUNT_EVENTS}"
    producer = await _producer(bootstrap)
    try:
        await _publish(producer, topic, mix.records, "publishing the mix")
        raw_runs = [
            await _raw_consume(
                bootstrap, topic, len(mix.records), settings, services, attempt, args
            )
            for attempt in range(1, args.engine_raw_repeats + 1)
        ]
        raw = max(raw_runs, key=lambda phase: phase.rate)

        db = create_engine(database_url, pool_size=4)
        engine_process = _EngineProcess(
            bootstrap=bootstrap,
            database_url=database_url,
            prefix=prefix,
            group=settings.group_id,
            workdir=workdir,
        )
        try:
            applied = _Applied(db, settings.group_id)
            await engine_process.start()
            try:
                rss_started = engine_process.rss()
                throughput = await engine_process.consume(
                    applied,
                    0,
                    len(mix.records),
                    services,
                    "engine: the mix",
                    warmup=int(WARMUP_SHARE * len(mix.records)),
                )
                stalls, steps = engine_process.stalls, engine_process.steps
                rss_loaded = engine_process.rss()
                after_mix = await engine_process.metrics()
                stored = await _stored_sizes(db, workspace)
                timers = await _timer_phases(
                    args,
                    producer=producer,
                    topic=topic,
                    bootstrap=bootstrap,
                    prefix=prefix,
                    database_url=database_url,
                    db=db,
                    workspace=workspace,
                    mix=mix,
                    engine_process=engine_process,
                    applied=applied,
                    services=services,
                )
            except BenchmarkError:
                say(f"engine log (last lines):\n{tail(engine_process.log_path)}")
                raise
            finally:
                await engine_process.stop()
        finally:
            await db.dispose()
    finally:
        await producer.stop()

    two = await _two_processes(
        bootstrap=bootstrap,
        server_url=server_url,
        run_id=run_id,
        prefix=prefix,
        workspace=workspace,
        workdir=workdir,
        total=len(mix.records),
        services=services,
        cleanup=cleanup,
    )
    loaded = await _memory_loaded(args, bootstrap, database_url, workspace, mix)
    built, slice_run = await _memory_built(args, bootstrap, server_url, run_id, cleanup)
    if args.engine_profile is not None:
        await _profile_phase(args, bootstrap, server_url, run_id, cleanup)

    return _report(
        args,
        mix=mix,
        raw_runs=raw_runs,
        raw=raw,
        throughput=throughput,
        two=two,
        stalls=stalls,
        steps=steps,
        engine_metrics=after_mix,
        rss=(rss_started, rss_loaded),
        stored=stored,
        timers=timers,
        loaded=loaded,
        built=built,
        slice_run=slice_run,
        settings=settings,
        bootstrap=bootstrap,
        database_url=database_url,
        notes=notes,
        idle_load=idle_load,
    )


# -- the mix -----------------------------------------------------------------------------


class _Journeys:
    """Each account's events in order, with realistic gaps; envelopes as ingest makes them."""

    def __init__(self, rng: random.Random, workspace: str, now: float, tag: str) -> None:
        self.rng = rng
        self.workspace = workspace
        self.now = now
        self.tag = tag
        self.kinds: Counter[str] = Counter()
        self.sequence = 0

    # the two kinds of account

    def merchant(self, index: int) -> list[EventEnvelope]:
        """A merchant: joins (group), approved, profile, payout, a listing, some orders."""
        rng = self.rng
        account = f"merchant-{index:06d}"
        owner = f"{account}-owner"
        at = self.start()
        out = [
            self.group(
                account,
                owner,
                at,
                traits={
                    "name": f"Store {index}",
                    "business_type": "platform",
                    "category": rng.choice(CATEGORIES),
                },
                roles=["admin", "decision_maker"],
            )
        ]
        if rng.random() >= 0.9:
            return out  # still in review
        at = self.later(at)
        out.append(self.track(account, owner, at, "Merchant Approved", {"reviewer": "ops"}))
        if rng.random() < 0.6:
            at = self.later(at)
            out.append(self.track(account, owner, at, "Profile Completed", {"fields": 12}))
        if rng.random() < 0.25:
            at = self.later(at)
            out.append(self.track(account, owner, at, "Payout Account Connected", {}))
        if rng.random() < 0.4:
            at = self.later(at)
            listing = {"listing_id": f"l-{index}-1", "price": round(rng.uniform(5, 400), 2)}
            out.append(self.track(account, owner, at, "Listing Published", listing))
            if rng.random() < 0.5:
                for number in range(min(20, 1 + int(rng.expovariate(1 / 2.5)))):
                    at = self.later(at, shortest=60, longest=86_400)
                    staff = f"{account}-staff-{rng.randrange(3)}"
                    order = {
                        "order_id": f"o-{index}-{number}",
                        "amount": round(rng.lognormvariate(4.5, 1.0), 2),
                        "currency": "USD",
                    }
                    out.append(self.track(account, staff, at, "Order Completed", order))
        return out

    def company(self, index: int) -> list[EventEnvelope]:
        """A SaaS company: a deal in the CRM, its admin, demo, contract, invoice, then the
        admin invites the team and end users create reports."""
        rng = self.rng
        account = f"company-{index:06d}"
        admin = f"{account}-admin"
        deal = f"deal-{index:06d}"
        amount = round(rng.uniform(2_000, 90_000), -2)
        at = self.start()
        out = [
            self.crm(
                at,
                "milepost.crm.deal.stage_changed",
                DealStageChanged(
                    account_id=account,
                    deal_id=deal,
                    stage="qualified",
                    previous_stage="lead",
                    amount=amount,  # type: ignore[arg-type]
                    currency="USD",
                ),
            )
        ]
        if rng.random() < 0.6:
            at = self.later(at)
            contact = ContactUpserted(
                account_id=account,
                contact_id=admin,
                name=f"Admin {index}",
                email=f"admin@company-{index}.example",
                roles=["admin"],  # type: ignore[list-item]
            )
            out.append(self.crm(at, "milepost.crm.contact.upserted", contact))
        if rng.random() >= 0.5:
            return out
        at = self.later(at)
        out.append(self.stage(at, account, deal, "demo", "qualified", amount))
        if rng.random() >= 0.45:
            if rng.random() < 0.15:
                at = self.later(at)
                out.append(self.stage(at, account, deal, "lost", "demo", amount))
            return out
        at = self.later(at)
        starts = datetime.fromtimestamp(at, UTC).date()
        contract = ContractSigned(
            account_id=account,
            contract_id=f"c-{index}",
            value=amount,  # type: ignore[arg-type]
            currency="USD",
            starts_on=starts,
            ends_on=starts + timedelta(days=365),
            seats=rng.choice((10, 25, 50, 100)),
        )
        out.append(self.crm(at, "milepost.crm.contract.signed", contract))
        if rng.random() >= 0.8:
            return out
        at = self.later(at)
        invoice = InvoicePaid(
            account_id=account,
            invoice_id=f"inv-{index}-1",
            amount=amount,  # type: ignore[arg-type]
            currency="USD",
            paid_at=datetime.fromtimestamp(at, UTC),
        )
        out.append(self.crm(at, "milepost.crm.invoice.paid", invoice))
        for number in range(rng.randint(1, 4)):
            at = self.later(at, shortest=60, longest=7_200)
            invitee = {"invitee": f"user-{number}@company-{index}.example"}
            out.append(self.track(account, admin, at, "User Invited", invitee))
        if rng.random() < 0.3:
            users = [f"{account}-user-{n}" for n in range(3)]
            for user in users:
                at = self.later(at, shortest=60, longest=7_200)
                out.append(self.identify(account, user, at, ["end_user"]))
            for _ in range(rng.randint(3, 4)):
                at = self.later(at, shortest=60, longest=86_400)
                report = {"report": rng.choice(("revenue", "churn", "pipeline"))}
                out.append(self.track(account, rng.choice(users), at, "Report Created", report))
        return out

    def follow_up(self, account: str) -> EventEnvelope:
        """One more event of an account already on its path."""
        rng = self.rng
        at = self.now - rng.uniform(0, 60)
        if account.startswith("merchant-"):
            user = f"{account}-staff-{rng.randrange(3)}"
            if rng.random() < 0.75:
                order = {
                    "order_id": f"o-{self.tag}-{self.sequence}",
                    "amount": round(rng.lognormvariate(4.5, 1.0), 2),
                    "currency": "USD",
                }
                return self.track(account, user, at, "Order Completed", order)
            listing = {"listing_id": f"l-{self.tag}-{self.sequence}", "price": 20.0}
            return self.track(account, user, at, "Listing Published", listing)
        roll = rng.random()
        if roll < 0.6:
            user = f"{account}-user-{rng.randrange(3)}"
            return self.track(account, user, at, "Report Created", {"report": "revenue"})
        if roll < 0.85:
            invitee = {"invitee": f"user-{self.tag}-{self.sequence}@example.com"}
            return self.track(account, f"{account}-admin", at, "User Invited", invitee)
        invoice = InvoicePaid(
            account_id=account,
            invoice_id=f"inv-{self.tag}-{self.sequence}",
            amount=1200,  # type: ignore[arg-type]
            currency="USD",
        )
        return self.crm(at, "milepost.crm.invoice.paid", invoice)

    # times

    def start(self) -> float:
        """Accounts start over the last three weeks."""
        return self.now - 21 * 86_400 + self.rng.uniform(0, 20 * 86_400)

    def later(self, at: float, *, shortest: float = 300, longest: float = 2 * 86_400) -> float:
        return min(self.now - 1, at + self.rng.uniform(shortest, longest))

    # envelopes

    def message_id(self) -> str:
        self.sequence += 1
        return f"{self.tag}-{self.sequence:09d}"

    def segment(
        self,
        kind: EventType,
        account: str,
        user: str,
        at: float,
        *,
        event: str | None = None,
        properties: dict[str, Any] | None = None,
        traits: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> EventEnvelope:
        self.kinds[f"{kind.value} {event}" if event else kind.value] += 1
        message = self.message_id()
        when = datetime.fromtimestamp(at, UTC)
        return EventEnvelope(
            event_id=event_id_for(self.workspace, message),
            workspace_id=self.workspace,
            message_id=message,
            type=kind,
            event=event,
            account_id=account,
            user_id=user,
            properties=properties or {},
            traits=traits or {},
            context=context if context is not None else {"groupId": account, "library": LIBRARY},
            timestamp=when,
            original_timestamp=when,
            sent_at=when,
            received_at=when + timedelta(milliseconds=self.rng.randint(20, 400)),
            source="segment",
        )

    def track(
        self, account: str, user: str, at: float, event: str, properties: dict[str, Any]
    ) -> EventEnvelope:
        return self.segment(EventType.TRACK, account, user, at, event=event, properties=properties)

    def group(
        self, account: str, user: str, at: float, *, traits: dict[str, Any], roles: list[str]
    ) -> EventEnvelope:
        context = {"library": LIBRARY, "traits": {"roles": roles}}
        return self.segment(EventType.GROUP, account, user, at, traits=traits, context=context)

    def identify(self, account: str, user: str, at: float, roles: list[str]) -> EventEnvelope:
        traits = {"roles": roles, "email": f"{user}@example.com"}
        return self.segment(EventType.IDENTIFY, account, user, at, traits=traits)

    def stage(
        self, at: float, account: str, deal: str, stage: str, previous: str, amount: float
    ) -> EventEnvelope:
        change = DealStageChanged(
            account_id=account,
            deal_id=deal,
            stage=stage,
            previous_stage=previous,
            amount=amount,  # type: ignore[arg-type]
            currency="USD",
        )
        return self.crm(at, "milepost.crm.deal.stage_changed", change)

    def crm(self, at: float, kind: str, fact: CrmData) -> EventEnvelope:
        """As ingest publishes a CloudEvent: the fact's JSON in ``properties``."""
        self.kinds[kind.removeprefix("milepost.")] += 1
        self.sequence += 1
        message = f"hubspot#{self.tag}-{self.sequence:09d}"
        when = datetime.fromtimestamp(at, UTC)
        person = fact.contact_id if isinstance(fact, ContactUpserted) else None
        return EventEnvelope(
            event_id=event_id_for(self.workspace, message),
            workspace_id=self.workspace,
            message_id=message,
            type=EventType.CRM,
            event=kind,
            account_id=fact.account_id,
            user_id=person,
            properties=fact.model_dump(mode="json"),
            context={"cloudevent": {"subject": None, "dataschema": None}},
            timestamp=when,
            original_timestamp=when,
            received_at=when + timedelta(milliseconds=self.rng.randint(50, 2_000)),
            source="crm:hubspot",
        )


def _mix(rng: random.Random, workspace: str, accounts: int, *, tag: str = "mix") -> Mix:
    """Half merchants, half SaaS companies; events ordered by time across all accounts."""
    started = time.perf_counter()
    say(f"preparing the mix for {accounts:,} accounts")
    journeys = _Journeys(rng, workspace, time.time(), tag)
    timed: list[tuple[datetime, int, EventEnvelope]] = []
    platform: list[str] = []
    saas: list[str] = []
    for index in range(accounts):
        if index % 2 == 0:
            events = journeys.merchant(index)
            platform.append(events[0].account_id or "")
        else:
            events = journeys.company(index)
            saas.append(events[0].account_id or "")
        timed.extend((e.timestamp, len(timed) + n, e) for n, e in enumerate(events))
    timed.sort(key=lambda item: (item[0], item[1]))
    origins = _Origins()
    records = _attributed([e for _, _, e in timed], origins)
    say(
        f"prepared {len(records):,} events ({len(records) / accounts:.2f} per account) "
        f"in {time.perf_counter() - started:.1f}s"
    )
    return Mix(records, platform, saas, journeys.kinds, origins)


def _follow_ups(
    rng: random.Random, mix: Mix, workspace: str, accounts: Sequence[str], count: int, tag: str
) -> list[Keyed]:
    journeys = _Journeys(rng, workspace, time.time(), tag)
    events = [journeys.follow_up(rng.choice(accounts)) for _ in range(count)]
    return [(e.key.encode(), e.model_dump_json().encode(), mix.origins.of(e)) for e in events]


class _Origins:
    """Positions on ``milepost.events`` (partitioned as ingest publishes) for events the
    benchmark publishes attributed: the origins the attribution stage stamps on them."""

    def __init__(self) -> None:
        self.next: Counter[int] = Counter()

    def of(self, event: EventEnvelope) -> Headers:
        partition = partition_for(event.key.encode(), ORIGIN_PARTITIONS)
        offset = self.next[partition]
        self.next[partition] += 1
        source = ConsumedRecord(Topic.EVENTS, partition, offset, None, b"", (), 0)
        return (origin_header(source),)


# -- Kafka -------------------------------------------------------------------------------


def _attributed(events: list[EventEnvelope], origins: _Origins) -> list[Keyed]:
    """The events as the attribution stage publishes them on ``milepost.accounts.events``
    (each names its account; memberships give the actors' roles; each carries its origin),
    for the engine alone."""
    known: dict[tuple[str, str], Membership] = {}
    records = []
    for event in events:
        user = (event.workspace_id, event.user_id or "")
        attribution = attribute(event, known.get(user))
        if attribution.learned is not None:
            known[user] = attribution.learned
        record = account_event_record(EventRecord(**event.model_dump()), attribution)
        records.append((record.key, record.value, origins.of(event)))
    return records


async def _provision_topics(bootstrap: str, prefix: str, cleanup: _Cleanup) -> None:
    bus = NamespacedBus(KafkaBus(KafkaOptions(bootstrap_servers=bootstrap)), prefix)
    cleanup.topics.extend(f"{prefix}{spec.topic}" for spec in TOPICS)
    try:
        await bus.ensure_topics(TOPICS, replication_factor=1)
    except BusUnavailable as exc:
        raise BenchmarkError(f"could not create the topics under {prefix}: {exc}") from exc


async def _producer(bootstrap: str) -> Any:
    """A raw producer configured as :class:`KafkaBus` configures its own."""
    options = KafkaOptions(bootstrap_servers=bootstrap, client_id="milepost-bench-engine")
    producer = AIOKafkaProducer(
        bootstrap_servers=options.bootstrap_servers,
        client_id=options.client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=options.linger_ms,
        max_batch_size=options.max_batch_bytes,
        request_timeout_ms=options.request_timeout_ms,
    )
    await producer.start()
    return producer


async def _publish(producer: Any, topic: str, records: Sequence[Keyed], label: str | None) -> None:
    """Send everything without waiting, then wait for every ack."""
    deliveries = []
    step = 5_000
    with progress(label or "publishing", len(records), "events") as advance:
        for index, (key, value, headers) in enumerate(records, 1):
            deliveries.append(await producer.send(topic, value, key=key, headers=list(headers)))
            if label and index % step == 0:
                advance(step)
        for delivery in deliveries:
            await delivery
        if label and len(records) % step:
            advance(len(records) % step)


async def _raw_consume(
    bootstrap: str,
    topic: str,
    total: int,
    settings: EngineSettings,
    services: Services,
    attempt: int,
    args: argparse.Namespace,
) -> Phase:
    """``getmany`` as the engine polls (same batch size and timeout), counting records only;
    timed from the first batch to the last record, as the engine is."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        client_id="milepost-bench-raw",
        group_id=f"bench-raw-{secrets.token_hex(4)}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        partition_assignment_strategy=(RangePartitionAssignor,),
    )
    await consumer.start()
    try:
        consumed = 0
        first: tuple[int, CpuSample] | None = None
        label = f"raw getmany {attempt}/{args.engine_raw_repeats}"
        deadline = time.monotonic() + STALL_TIMEOUT_S
        with progress(label, total, "events") as advance:
            while consumed < total:
                batches = await consumer.getmany(
                    timeout_ms=settings.poll_timeout_ms, max_records=settings.max_batch_records
                )
                count = sum(len(batch) for batch in batches.values())
                if count:
                    deadline = time.monotonic() + STALL_TIMEOUT_S
                    consumed += count
                    advance(count)
                    if first is None:
                        first = (consumed, CpuSample.take(None, services))
                elif time.monotonic() > deadline:
                    raise BenchmarkError(
                        f"the raw consumer stalled at {consumed:,} of {total:,} records"
                    )
        end = CpuSample.take(None, services)
    finally:
        await consumer.stop()
    assert first is not None
    counted, start = first
    return Phase(total - counted, end.wall - start.wall, cpu_use(start, end, "engine process"))


async def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [KafkaTopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: int(offset) for tp, offset in ends.items()}


# -- the engine process ------------------------------------------------------------------


class _Applied:
    """The engine's applied offsets on the events topic, summed over partitions."""

    def __init__(self, db: AsyncEngine, group: str) -> None:
        self.db = db
        self.group = group

    async def total(self) -> int:
        async with self.db.connect() as connection:
            value = await connection.scalar(
                text(
                    "SELECT coalesce(sum(next_offset), 0) FROM engine_applied_offsets "
                    "WHERE consumer_group = :group AND topic = :topic"
                ),
                {"group": self.group, "topic": Topic.ACCOUNT_EVENTS.value},
            )
        return int(value or 0)


class _EngineProcess:
    """``milepost engine`` in its own process, as deployed."""

    def __init__(
        self, *, bootstrap: str, database_url: str, prefix: str, group: str, workdir: Path
    ) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "MILEPOST_BUS": "kafka",
            "MILEPOST_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MILEPOST_TOPIC_PREFIX": prefix,
            "MILEPOST_DATABASE_URL": database_url,
            "MILEPOST_ENGINE_GROUP_ID": group,
            "MILEPOST_HOST": "127.0.0.1",
            "MILEPOST_PORT": str(self.port),
            "MILEPOST_LOG_LEVEL": "WARNING",
            "MILEPOST_DATA_DIR": str(workdir / "data"),
        }
        self.log_path = workdir / "engine.log"
        self.process: asyncio.subprocess.Process | None = None
        self.log: IO[bytes] | None = None
        self.stalls: Stalls | None = None
        """Event-loop stalls during the last :meth:`consume`."""
        self.steps: list[StageSteps] = []
        """Where each stage's batches spent their time during the last :meth:`consume`."""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        script = Path(sys.executable).with_name("milepost")
        command = (
            [sys.executable, str(script), "engine"]
            if script.exists()
            else [sys.executable, "-c", "from services.cli import main; main()", "engine"]
        )
        say(f"starting milepost engine (port {self.port})")
        self.log = self.log_path.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            *command, env=self.env, stdout=self.log, stderr=asyncio.subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                self.check_alive()
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get(f"http://127.0.0.1:{self.port}/readyz")
                    if response.status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise BenchmarkError(f"the engine was not ready in {START_TIMEOUT_S}s")
                await asyncio.sleep(0.2)
        say(f"engine ready (pid {self.pid})")

    def check_alive(self) -> None:
        if self.process is not None and self.process.returncode is not None:
            raise BenchmarkError(f"the engine exited with status {self.process.returncode}")

    def rss(self) -> int | None:
        return process_rss(self.pid) if self.pid is not None else None

    async def consume(
        self,
        applied: _Applied,
        start: int,
        target: int,
        services: Services,
        label: str,
        *,
        since: CpuSample | None = None,
        warmup: int = 0,
        others: Sequence[_EngineProcess] = (),
    ) -> Phase:
        """Wait until the engine (with ``others`` in its group, if any) has applied up to
        ``target``. Events/s from ``since`` (the records were published to an engine already
        polling) if given, else from the first applied offset at least ``warmup`` records
        past ``start`` (the records before it not counted). Also the CPU of the database's
        backends, the engine's event-loop stalls and its batches' steps over the same span."""
        first: tuple[int, CpuSample] | None = None if since is None else (start, since)
        backends = await backends_cpu(applied.db)
        readings = await self.histograms()
        last = start
        moved_at = time.monotonic()
        with progress(label, target - start, "events") as advance:
            while True:
                self.check_alive()
                for other in others:
                    other.check_alive()
                now = await applied.total()
                if now > last:
                    advance(now - last)
                    last, moved_at = now, time.monotonic()
                    if first is None and now - start >= warmup:
                        first = (now, CpuSample.take(self.pid, services))
                        backends = await backends_cpu(applied.db)
                        readings = await self.histograms()
                if now >= target:
                    break
                if time.monotonic() - moved_at > STALL_TIMEOUT_S:
                    raise BenchmarkError(
                        f"{label}: no progress for {STALL_TIMEOUT_S:.0f}s "
                        f"({now - start:,} of {target - start:,} applied)"
                    )
                await asyncio.sleep(POLL_INTERVAL_S)
        end = CpuSample.take(self.pid, services)
        backends_used_s = backends_used(backends, await backends_cpu(applied.db))
        histograms = await self.histograms()
        self.stalls = stalls_between(readings, histograms)
        self.steps = steps_between(readings, histograms)
        assert first is not None
        counted, begin = first
        cpu = cpu_use(begin, end, "engine process")
        cpu[DATABASE_BACKENDS] = round(backends_used_s / max(end.wall - begin.wall, 1e-9), 3)
        return Phase(target - counted, end.wall - begin.wall, cpu)

    async def histograms(self) -> dict[str, Histogram]:
        """The loop-lag, collection and step histograms on the engine's ``/metrics``."""
        return await read_histograms(f"http://127.0.0.1:{self.port}/metrics")

    async def metrics(self) -> dict[str, float]:
        """The engine's counters and histogram sums, by sample name and labels."""
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(f"http://127.0.0.1:{self.port}/metrics")
        response.raise_for_status()
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            if not family.name.startswith("milepost_engine_"):
                continue
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                name = f"{sample.name}{{{labels}}}" if labels else sample.name
                values[name] = values.get(name, 0.0) + sample.value
        return values

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                say("the engine did not stop on SIGINT; killing it")
                self.process.kill()
                await self.process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None


def _delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def _by_label(values: dict[str, float], family: str) -> dict[str, float]:
    """``{label value: sample}`` of one single-label counter family."""
    found: dict[str, float] = {}
    for name, value in values.items():
        if name.startswith(f"{family}_total{{"):
            label = name.partition("{")[2].rstrip("}").partition("=")[2]
            found[label] = found.get(label, 0.0) + value
    return found


async def _two_processes(
    *,
    bootstrap: str,
    server_url: str,
    run_id: str,
    prefix: str,
    workspace: str,
    workdir: Path,
    total: int,
    services: Services,
    cleanup: _Cleanup,
) -> Phase:
    """The mix again, from the beginning, by two engine processes in one new group on a
    fresh database; timed as the single process is (after the warm-up share)."""
    database_url = await _fresh_database(server_url, f"milepost_bench_{run_id}_two", cleanup)
    await _prepare_database(database_url, workspace)
    group = f"bench-engine-two-{run_id}"
    processes = []
    for number in (1, 2):
        folder = workdir / f"two-{number}"
        folder.mkdir()
        processes.append(
            _EngineProcess(
                bootstrap=bootstrap,
                database_url=database_url,
                prefix=prefix,
                group=group,
                workdir=folder,
            )
        )
    db = create_engine(database_url, pool_size=4)
    try:
        await asyncio.gather(*(process.start() for process in processes))
        try:
            return await processes[0].consume(
                _Applied(db, group),
                0,
                total,
                services,
                "two engine processes: the mix",
                warmup=int(WARMUP_SHARE * total),
                others=processes[1:],
            )
        except BenchmarkError:
            for process in processes:
                say(f"engine log (last lines):\n{tail(process.log_path)}")
            raise
        finally:
            await asyncio.gather(*(process.stop() for process in processes))
    finally:
        await db.dispose()


# -- timers ------------------------------------------------------------------------------


@dataclass(slots=True)
class TimerResults:
    pending_before: int
    pending_added: int
    insert_seconds: float
    without: Phase
    with_pending: Phase
    idle: Lags
    loaded: Lags
    loaded_events: Phase


async def _timer_phases(
    args: argparse.Namespace,
    *,
    producer: Any,
    topic: str,
    bootstrap: str,
    prefix: str,
    database_url: str,
    db: AsyncEngine,
    workspace: str,
    mix: Mix,
    engine_process: _EngineProcess,
    applied: _Applied,
    services: Services,
) -> TimerResults:
    rng = random.Random(args.engine_seed + 1)
    due_accounts = await _due_candidates(db, workspace, 2 * args.engine_due_timers, rng)
    if not due_accounts:
        raise BenchmarkError("no account has an active node: no due timer can fire")
    busy = {account for account, *_ in due_accounts}
    others = [a for a in (*mix.platform, *mix.saas) if a not in busy] or mix.platform
    position = await applied.total()

    async def batch(label: str, records: list[Keyed]) -> Phase:
        nonlocal position
        since = CpuSample.take(engine_process.pid, services)
        await _publish(producer, topic, records, None)
        start, position = position, position + len(records)
        return await engine_process.consume(applied, start, position, services, label, since=since)

    pending_before = await _count(db, "SELECT count(*) FROM engine_timers")
    without = await batch(
        f"engine: follow-ups, {pending_before:,} timers pending",
        _follow_ups(rng, mix, workspace, others, args.engine_load_events, "b0"),
    )
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    started = time.perf_counter()
    await _add_pending_timers(dsn, workspace, mix, args.engine_pending_timers, rng)
    insert_seconds = time.perf_counter() - started
    pending = pending_before + args.engine_pending_timers
    with_pending = await batch(
        f"engine: follow-ups, {pending:,} timers pending",
        _follow_ups(rng, mix, workspace, others, args.engine_load_events, "b1"),
    )

    half = len(due_accounts) // 2
    triggers = f"{prefix}{Topic.TRIGGERS}"
    idle = await _fire(
        "idle",
        dsn,
        bootstrap,
        triggers,
        workspace,
        due_accounts[:half],
        args.engine_due_spread,
        engine_process,
    )
    # Enough follow-ups to keep the engine busy until the last timer is due, and then some.
    busy_seconds = DUE_LEAD_S + args.engine_due_spread + 2
    load = max(args.engine_load_events, math.ceil(with_pending.rate * busy_seconds))
    load_records = _follow_ups(rng, mix, workspace, others, load, "b2")
    loaded_events: list[Phase] = []

    async def concurrent_batch() -> float:
        label = "engine: follow-ups while timers fire"
        loaded_events.append(await batch(label, load_records))
        return time.time()

    loaded = await _fire(
        "under load",
        dsn,
        bootstrap,
        triggers,
        workspace,
        due_accounts[half:],
        args.engine_due_spread,
        engine_process,
        concurrently=concurrent_batch,
    )
    return TimerResults(
        pending_before=pending_before,
        pending_added=args.engine_pending_timers,
        insert_seconds=insert_seconds,
        without=without,
        with_pending=with_pending,
        idle=idle,
        loaded=loaded,
        loaded_events=loaded_events[0],
    )


DueAccount = tuple[str, str, int, str, int, int]
"""(account, path, path version, active node, its visit, partition)."""


async def _due_candidates(
    db: AsyncEngine, workspace: str, count: int, rng: random.Random
) -> list[DueAccount]:
    """Accounts whose node is active, in a random order; a due timer for that node visit
    fires a ``node_overdue`` trigger."""
    async with db.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT state FROM engine_account_states "
                "WHERE workspace_id = :workspace AND node IS NOT NULL "
                "ORDER BY md5(account_id || :salt) LIMIT :count"
            ),
            {"workspace": workspace, "salt": str(rng.random()), "count": count},
        )
        found: list[DueAccount] = []
        for (data,) in rows:
            state = decode_state(data)
            record = state.nodes.get(state.node or "")
            if state.node is None or record is None or record.status is not NodeStatus.ACTIVE:
                continue
            key = f"{workspace}/a/{state.account_id}".encode()
            found.append(
                (
                    state.account_id,
                    state.path_id,
                    state.path_version,
                    state.node,
                    record.visits,
                    partition_for(key, PARTITIONS),
                )
            )
    return found


async def _add_pending_timers(
    dsn: str, workspace: str, mix: Mix, count: int, rng: random.Random
) -> None:
    """``count`` timers due between an hour and 90 days from now, for the mix's accounts,
    with COPY; then fresh planner statistics, as autovacuum would give them."""
    if not count:
        return
    say(f"adding {count:,} far-future timers (COPY)")
    owners = [(a, PLATFORM_PATH) for a in mix.platform] + [(a, SAAS_PATH) for a in mix.saas]
    partitions = {a: partition_for(f"{workspace}/a/{a}".encode(), PARTITIONS) for a, _ in owners}
    now = int(time.time())
    kinds = ("due", "escalation", "review")
    rows = []
    for n in range(count):
        account, path = owners[n % len(owners)]
        kind = kinds[n % 3]
        node = None if kind == "review" else rng.choice(PENDING_NODES[path])
        rows.append(
            (
                f"bench-pending-{n:010d}",
                partitions[account],
                now + rng.randint(*PENDING_HORIZON),
                workspace,
                account,
                path,
                1,
                kind,
                node,
                1,
                1 if kind == "escalation" else 0,
            )
        )
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "engine_timers", records=rows, columns=list(TIMER_COLUMNS)
        )
        await connection.execute("ANALYZE engine_timers")
    finally:
        await connection.close()


async def _fire(
    label: str,
    dsn: str,
    bootstrap: str,
    triggers_topic: str,
    workspace: str,
    due: Sequence[DueAccount],
    spread: int,
    engine_process: _EngineProcess,
    *,
    concurrently: Callable[[], Awaitable[float]] | None = None,
) -> Lags:
    """Write due timers over ``spread`` seconds, then read their triggers back."""
    starts = await _end_offsets(bootstrap, triggers_topic)
    before = await engine_process.metrics()
    first_due = int(time.time()) + DUE_LEAD_S
    expected: dict[tuple[str, str], int] = {}
    rows = []
    for n, (account, path, version, node, visit, partition) in enumerate(due):
        due_at = first_due + n * spread // len(due)
        expected[(account, path)] = due_at
        timer_id = f"bench-due-{label[:4]}-{n:06d}"
        row = (
            timer_id,
            partition,
            due_at,
            workspace,
            account,
            path,
            version,
            "due",
            node,
            visit,
            0,
        )
        rows.append(row)
    say(f"timers {label}: {len(rows):,} due timers over {spread}s (the first due in {DUE_LEAD_S}s)")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "engine_timers", records=rows, columns=list(TIMER_COLUMNS)
        )
    finally:
        await connection.close()
    reader = asyncio.create_task(
        _read_overdue(bootstrap, triggers_topic, starts, expected, first_due + spread)
    )
    loaded_until: float | None = None
    if concurrently is not None:
        loaded_until = await concurrently()
    broker_ms, occurred_s, stamps = await reader
    after = await engine_process.metrics()
    count = _delta(before, after, "milepost_engine_timer_fire_lag_seconds_count")
    total = _delta(before, after, "milepost_engine_timer_fire_lag_seconds_sum")
    lags = Lags(
        label,
        len(rows),
        broker_ms,
        occurred_s,
        engine_mean_ms=1000 * total / count if count else None,
    )
    if loaded_until is not None:
        lags.during_load = sum(1 for stamp in stamps if stamp <= loaded_until)
    say(
        f"timers {label}: {len(broker_ms):,}/{len(rows):,} fired; lag p50 "
        f"{percentile(broker_ms, 0.5):,.0f} ms, p99 {percentile(broker_ms, 0.99):,.0f} ms"
    )
    return lags


async def _read_overdue(
    bootstrap: str,
    topic: str,
    starts: dict[int, int],
    expected: dict[tuple[str, str], int],
    last_due: int,
) -> tuple[list[float], list[float], list[float]]:
    """The ``node_overdue`` triggers of ``expected`` from ``starts`` on: lag by broker time
    (ms) and by ``occurred_at`` (s), and each trigger's broker time."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    broker_ms: list[float] = []
    occurred_s: list[float] = []
    stamps: list[float] = []
    waiting = dict(expected)
    try:
        partitions = [KafkaTopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, starts.get(tp.partition, 0))
        deadline = last_due + FIRE_DEADLINE_S
        while waiting and time.time() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=5_000)
            for record in (r for batch in batches.values() for r in batch):
                trigger = orjson.loads(record.value)
                if trigger.get("kind") != "node_overdue":
                    continue
                due_at = waiting.pop((trigger["account_id"], trigger["path_id"]), None)
                if due_at is None:
                    continue
                stamp = record.timestamp / 1000
                stamps.append(stamp)
                broker_ms.append(1000 * (stamp - due_at))
                occurred = datetime.fromisoformat(trigger["occurred_at"]).timestamp()
                occurred_s.append(occurred - due_at)
    finally:
        await consumer.stop()
    return broker_ms, occurred_s, stamps


# -- stored size and memory ---------------------------------------------------------------


async def _count(db: AsyncEngine, sql: str) -> int:
    async with db.connect() as connection:
        return int(await connection.scalar(text(sql)) or 0)


async def _stored_sizes(db: AsyncEngine, workspace: str) -> dict[str, tuple[int, float]]:
    """Per path: accounts and the mean encoded state size in bytes."""
    async with db.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT path_id, count(*), avg(length(state)) FROM engine_account_states "
                "WHERE workspace_id = :workspace GROUP BY path_id ORDER BY path_id"
            ),
            {"workspace": workspace},
        )
        return {path: (int(n), float(mean)) for path, n, mean in rows}


async def _memory_loaded(
    args: argparse.Namespace, bootstrap: str, database_url: str, workspace: str, mix: Mix
) -> CacheMemory:
    """The figure: an in-process worker on the throughput run's database loads the states
    (and facts) of ``--engine-memory-accounts`` accounts for their events, as it does
    for every poll's records after a start or a rebalance."""
    half = min(len(mix.platform), (args.engine_memory_accounts + 1) // 2)
    chosen = mix.platform[:half] + mix.saas[: max(0, args.engine_memory_accounts - half)]
    wanted = {f"{workspace}/a/{account}".encode() for account in chosen}
    decoded = [
        decode(ConsumedRecord(Topic.ACCOUNT_EVENTS, 0, offset, key, value, headers, 0))
        for offset, (key, value, headers) in enumerate(mix.records)
        if key in wanted
    ]
    db = create_engine(database_url)
    bus = NamespacedBus(KafkaBus(KafkaOptions(bootstrap_servers=bootstrap)), "unused.")
    try:
        worker = _worker(bus, db, "bench-memory-load")
        await worker.refresh_catalog()
        say(f"memory: loading the states of {len(chosen):,} accounts into an in-process worker")
        gc.collect()
        tracemalloc.start()
        try:
            async with worker.sessions() as session:
                await worker.load_for(decoded, session)
            del decoded
            return _cache_memory(worker, len(chosen), "loaded from the database")
        finally:
            tracemalloc.stop()
    finally:
        await db.dispose()


async def _memory_built(
    args: argparse.Namespace, bootstrap: str, server_url: str, run_id: str, cleanup: _Cleanup
) -> tuple[CacheMemory, Phase]:
    """For comparison: states built by processing a slice of the mix in-process, under
    tracemalloc, on their own database, group and topics (also the cProfile sample)."""
    workspace = f"bench{run_id}s"
    prefix = f"bench-{run_id}-s."
    database_url = await _fresh_database(server_url, f"milepost_bench_{run_id}_s", cleanup)
    await _prepare_database(database_url, workspace)
    await _provision_topics(bootstrap, prefix, cleanup)
    mix = _mix(
        random.Random(args.engine_seed + 2), workspace, args.engine_slice_accounts, tag="slice"
    )
    producer = await _producer(bootstrap)
    try:
        await _publish(
            producer, f"{prefix}{Topic.ACCOUNT_EVENTS}", mix.records, "publishing the slice"
        )
    finally:
        await producer.stop()

    db = create_engine(database_url)
    bus = NamespacedBus(
        KafkaBus(KafkaOptions(bootstrap_servers=bootstrap, client_id="milepost-bench-worker")),
        prefix,
    )
    await bus.start()
    try:
        worker = _worker(bus, db, f"bench-slice-{run_id}")
        consumer = await bus.subscribe(list(INPUT_TOPICS), group_id=worker.settings.group_id)
        try:
            gc.collect()
            tracemalloc.start()
            started = time.perf_counter()
            cpu_started = time.process_time()
            await drain(worker, consumer, len(mix.records), "in-process worker (traced)")
            seconds = time.perf_counter() - started
            cpu = (time.process_time() - cpu_started) / seconds
            built = _cache_memory(worker, args.engine_slice_accounts, "built by processing")
        finally:
            tracemalloc.stop()
            await consumer.close()
    finally:
        await bus.close()
        await db.dispose()
    cpu_use = {"benchmark process CPU (cores)": round(cpu, 2)}
    return built, Phase(len(mix.records), seconds, cpu_use)


def _cache_memory(worker: EngineWorker, accounts: int, label: str) -> CacheMemory:
    """What dropping the worker's caches frees (tracemalloc must be tracing)."""
    entries = len(worker.states)
    states = sum(1 for state in worker.states.values() if state is not None)
    states_bytes, sites = _freed(lambda: setattr(worker, "states", {}))
    facts = sum(1 for known in worker.facts.values() if known)
    facts_bytes, _ = _freed(lambda: setattr(worker, "facts", {}))
    memory = CacheMemory(accounts, states, entries, states_bytes, facts, facts_bytes, sites)
    say(
        f"memory ({label}): worker.states holds {states:,} states in {entries:,} entries, "
        f"{states_bytes:,} bytes: {memory.per_account:,.0f} per account, allocated at:"
    )
    for site, size in sites:
        say(f"  {size / accounts:8,.0f} B  {site}")
    return memory


def _worker(bus: NamespacedBus, db: AsyncEngine, group: str) -> EngineWorker:
    return EngineWorker(
        bus=bus,
        sessions=create_session_factory(db),
        clock=SystemClock(),
        settings=EngineSettings(group_id=group),
        load_catalog=load_catalog,
        metrics=EngineMetrics(CollectorRegistry()),
    )


async def drain(
    worker: Handler[Any, Any],
    consumer: Any,
    total: int,
    label: str,
    topic: str = Topic.ACCOUNT_EVENTS,
    unit: str = "events",
) -> None:
    """Step the worker until it has applied ``total`` records of ``topic`` (read from
    the beginning of a fresh topic)."""
    applied = 0
    moved_at = time.monotonic()
    with progress(label, total, unit) as advance:
        while applied < total:
            await worker.step(consumer)
            now = sum(n for tp, n in worker.applied.items() if tp.topic == topic)
            if now > applied:
                advance(now - applied)
                applied, moved_at = now, time.monotonic()
            elif time.monotonic() - moved_at > STALL_TIMEOUT_S:
                raise BenchmarkError(f"{label}: no progress at {applied:,} of {total:,}")


def _freed(drop: Callable[[], None]) -> tuple[int, list[tuple[str, int]]]:
    """Traced bytes released by ``drop`` (with a collection), and the source lines that
    had allocated the most of them."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    snapshot = tracemalloc.take_snapshot()
    drop()
    gc.collect()
    freed = before - tracemalloc.get_traced_memory()[0]
    sites = [
        (_site(stat.traceback), -stat.size_diff)
        for stat in tracemalloc.take_snapshot().compare_to(snapshot, "lineno")
        if stat.size_diff < 0
    ]
    return freed, sorted(sites, key=lambda site: -site[1])[:MEMORY_SITES]


def _site(traceback: tracemalloc.Traceback) -> str:
    frame = traceback[0]
    path = Path(frame.filename)
    with contextlib.suppress(ValueError):
        path = path.relative_to(Path.cwd())
    return f"{path}:{frame.lineno}"


async def _profile_phase(
    args: argparse.Namespace, bootstrap: str, server_url: str, run_id: str, cleanup: _Cleanup
) -> None:
    """The slice again, on a fresh database and group, under cProfile."""
    path: Path = args.engine_profile
    workspace = f"bench{run_id}s"
    database_url = await _fresh_database(server_url, f"milepost_bench_{run_id}_p", cleanup)
    await _prepare_database(database_url, workspace)
    db = create_engine(database_url)
    bus = NamespacedBus(
        KafkaBus(KafkaOptions(bootstrap_servers=bootstrap, client_id="milepost-bench-worker")),
        f"bench-{run_id}-s.",
    )
    await bus.start()
    profiler = cProfile.Profile()
    try:
        worker = _worker(bus, db, f"bench-profile-{run_id}")
        consumer = await bus.subscribe(list(INPUT_TOPICS), group_id=worker.settings.group_id)
        try:
            ends = await bus.end_offsets(
                [TopicPartition(Topic.ACCOUNT_EVENTS, p) for p in range(PARTITIONS)]
            )
            started = time.perf_counter()
            profiler.enable()
            await drain(worker, consumer, sum(ends.values()), "in-process worker (cProfile)")
            profiler.disable()
            seconds = time.perf_counter() - started
        finally:
            await consumer.close()
    finally:
        await bus.close()
        await db.dispose()
    profiler.dump_stats(str(path))
    say(
        f"\nin-process worker profile {path} ({sum(ends.values()):,} events in {seconds:.1f}s "
        "under cProfile): top functions by own time"
    )
    stats = pstats.Stats(str(path), stream=sys.stderr)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(30)
    say("by cumulative time:")
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(40)
    say(f"inspect further: python -m pstats {path}")


# -- databases and cleanup ------------------------------------------------------------------


class _Cleanup:
    """What the run created: databases to drop and topics to delete, done at the end."""

    def __init__(self, bootstrap: str, server_url: str) -> None:
        self.bootstrap = bootstrap
        self.server_url = server_url
        self.databases: list[str] = []
        self.topics: list[str] = []

    async def run(self) -> None:
        for name in self.databases:
            try:
                await _on_server(self.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except (OSError, asyncpg.PostgresError) as exc:
                say(f"cleanup: could not drop database {name}: {exc}")
        if self.topics:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            try:
                await admin.start()
                existing = set(await admin.list_topics())
                doomed = [t for t in self.topics if t in existing]
                if doomed:
                    await admin.delete_topics(doomed)
            except Exception as exc:  # the figures are printed anyway
                say(f"cleanup: could not delete topics: {exc!r}")
            finally:
                await admin.close()
        say(
            f"cleanup: dropped {len(self.databases)} database(s), "
            f"deleted {len(self.topics)} topic(s)"
        )


async def _on_server(server_url: str, statement: str) -> None:
    dsn = make_url(server_url).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(dsn.render_as_string(False))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _fresh_database(server_url: str, name: str, cleanup: _Cleanup) -> str:
    try:
        await _on_server(server_url, f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchmarkError(f"could not create database {name}: {exc}") from exc
    cleanup.databases.append(name)
    return make_url(server_url).set(database=name).render_as_string(False)


async def _prepare_database(database_url: str, workspace: str) -> None:
    """Migrate, add the workspace and publish both reference paths in it."""
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        async with create_session_factory(engine)() as session:
            session.add(Workspace(id=workspace, name=workspace, created_at=datetime.now(UTC)))
            for name in PATH_FILES:
                source = (REFERENCE / name).read_text()
                await publish(session, workspace, name, source, clock=SystemClock())
            await session.commit()
    except (SQLAlchemyError, OSError) as exc:
        raise BenchmarkError(f"could not prepare the benchmark database: {exc}") from exc
    finally:
        await engine.dispose()


# -- the report ----------------------------------------------------------------------------


def _report(
    args: argparse.Namespace,
    *,
    mix: Mix,
    raw_runs: list[Phase],
    raw: Phase,
    throughput: Phase,
    two: Phase,
    stalls: Stalls | None,
    steps: list[StageSteps],
    engine_metrics: dict[str, float],
    rss: tuple[int | None, int | None],
    stored: dict[str, tuple[int, float]],
    timers: TimerResults,
    loaded: CacheMemory,
    built: CacheMemory,
    slice_run: Phase,
    settings: EngineSettings,
    bootstrap: str,
    database_url: str,
    notes: list[str],
    idle_load: float | None,
) -> Report:
    per_account = loaded.per_account
    stored_rows = sum(n for n, _ in stored.values())
    stored_mean = sum(n * mean for n, mean in stored.values()) / max(1, stored_rows)
    envelope = statistics.fmean(len(value) for _, value, _ in mix.records)
    outcomes = _by_label(engine_metrics, "milepost_engine_records")
    triggers = _by_label(engine_metrics, "milepost_engine_triggers")
    batches = engine_metrics.get("milepost_engine_batch_seconds_count", 0.0)
    batch_sum = engine_metrics.get("milepost_engine_batch_seconds_sum", 0.0)
    rss_started, rss_loaded = rss
    cpu_engine = throughput.cpu.get("engine process CPU (cores)")
    engine_us = None if cpu_engine is None else 1e6 * cpu_engine / max(throughput.rate, 1e-9)
    database_us = 1e6 * throughput.cpu[DATABASE_BACKENDS] / max(throughput.rate, 1e-9)
    scaling = two.rate / max(throughput.rate, 1e-9)
    per_core = (_per_busy_core(two), _per_busy_core(throughput))
    notes.append(
        f"two engine processes / one: {scaling:.2f}x "
        f"{'meets' if scaling >= SCALING_GOAL else 'MISSES'} the goal of >= {SCALING_GOAL}x "
        f"(both share the machine's {os.cpu_count() or 0} cores with the broker and the "
        f"database; per busy core of the machine, two give "
        f"{per_core[0] / max(per_core[1], 1e-9):.2f}x what one gives)"
    )
    notes.append(
        f"PostgreSQL CPU per engine event: {database_us:,.0f} us "
        f"{'meets' if database_us <= DATABASE_GOAL_US else 'MISSES'} the goal of "
        f"<= {DATABASE_GOAL_US:,.0f} us (backends of the run's database only)"
    )
    if stalls is not None:
        verdict = "meets" if stalls.p99_ms <= STALL_GOAL_MS else "MISSES"
        notes.append(
            f"event-loop lag p99 <= {stalls.p99_ms:,.1f} ms {verdict} the goal of "
            f"<= {STALL_GOAL_MS:,.0f} ms"
        )

    for figure_name, value, goal, unit in (
        ("engine state per account", per_account, MEMORY_GOAL_BYTES, "B"),
        ("timer fire lag p99, engine idle", _p99(timers.idle), LAG_GOAL_MS, "ms"),
        ("timer fire lag p99, under load", _p99(timers.loaded), LAG_GOAL_MS, "ms"),
    ):
        verdict = "meets" if value <= goal else "MISSES"
        notes.append(f"{figure_name}: {value:,.0f} {unit} {verdict} its goal of <= {goal:,.0f}")
    for lags in (timers.idle, timers.loaded):
        if lags.missing:
            notes.append(
                f"timers {lags.label}: {lags.missing:,} of {lags.timers:,} due timers had no "
                f"trigger {FIRE_DEADLINE_S:.0f}s after their time (counted out of the lag)"
            )

    details: dict[str, Any] = {
        "accounts (half on each path)": args.engine_accounts,
        "events in the mix": len(mix.records),
        "events per account (mean)": round(len(mix.records) / args.engine_accounts, 2),
        "mix by kind": ", ".join(f"{k} {v:,}" for k, v in mix.kinds.most_common()),
        "envelope bytes (mean)": round(envelope),
        "partitions": PARTITIONS,
        "engine batch (max records), poll timeout ms": (
            f"{settings.max_batch_records}, {settings.poll_timeout_ms}"
        ),
        "kafka": bootstrap,
        "database": make_url(database_url).render_as_string(hide_password=True),
        "machine cores": os.cpu_count() or 0,
        "machine busy before the run (cores)": "-" if idle_load is None else round(idle_load, 2),
        "raw: events/s of each run": ", ".join(f"{r.rate:,.0f}" for r in raw_runs),
        "raw: seconds (fastest run)": round(raw.seconds, 2),
        **{f"raw: {k}": v for k, v in raw.cpu.items()},
        "engine: seconds": round(throughput.seconds, 2),
        **{f"engine: {k}": v for k, v in throughput.cpu.items()},
        "engine: timed after (share of the mix)": WARMUP_SHARE,
        "engine: CPU per event (us)": "-" if engine_us is None else round(engine_us, 1),
        "engine: PostgreSQL backends' CPU per event (us)": round(database_us, 1),
        "two processes: seconds": round(two.seconds, 2),
        **{f"two processes: {k}": v for k, v in two.cpu.items()},
        **({} if stalls is None else stalls.summary("engine", goal=True)),
        **{k: v for stage in steps for k, v in stage.summary("the mix", queued=False).items()},
        "engine: records by outcome": ", ".join(
            f"{k} {v:,.0f}" for k, v in sorted(outcomes.items())
        ),
        "engine: triggers by kind": ", ".join(f"{k} {v:,.0f}" for k, v in sorted(triggers.items())),
        "engine: batches, mean ms per batch": (
            f"{batches:,.0f}, {1000 * batch_sum / batches:,.0f}" if batches else "-"
        ),
        "engine: RSS after start / after the mix (MB)": (
            f"{(rss_started or 0) / 2**20:,.0f} / {(rss_loaded or 0) / 2**20:,.0f}"
        ),
        "engine: RSS growth per account (B)": "-"
        if rss_started is None or rss_loaded is None
        else round((rss_loaded - rss_started) / args.engine_accounts),
        **{
            f"stored state, {path}: accounts, mean bytes": f"{n:,}, {mean:,.0f}"
            for path, (n, mean) in stored.items()
        },
        "stored state: mean bytes per row": round(stored_mean),
        "memory: accounts loaded, states, cache entries": (
            f"{loaded.accounts:,}, {loaded.states:,}, {loaded.entries:,}"
        ),
        "memory: loaded, bytes per state": round(loaded.states_bytes / max(1, loaded.states)),
        "memory: loaded, per account by allocating line (B)": ", ".join(
            f"{site} {size / loaded.accounts:,.0f}" for site, size in loaded.sites
        ),
        "memory: loaded, worker.facts: accounts with facts, bytes each": (
            f"{loaded.facts:,}, {loaded.facts_bytes / max(1, loaded.facts):,.0f}"
        ),
        "memory: built by processing a slice, accounts, bytes per account": (
            f"{built.accounts:,}, {built.per_account:,.0f}"
        ),
        "memory: built, per account by allocating line (B)": ", ".join(
            f"{site} {size / built.accounts:,.0f}" for site, size in built.sites
        ),
        "memory: slice events/s in-process (under tracemalloc)": round(slice_run.rate),
        "timers: pending from the mix itself": timers.pending_before,
        "timers: far-future timers added, seconds (COPY + ANALYZE)": (
            f"{timers.pending_added:,}, {timers.insert_seconds:.1f}"
        ),
        "timers: follow-up events per batch": args.engine_load_events,
        "timers: engine events/s without / with the added timers": (
            f"{timers.without.rate:,.0f} / {timers.with_pending.rate:,.0f}"
        ),
        "timers: engine events/s while due timers fire (events)": (
            f"{timers.loaded_events.rate:,.0f} ({timers.loaded_events.events:,})"
        ),
    }
    for lags in (timers.idle, timers.loaded):
        details[f"lag {lags.label}: fired / due timers"] = (
            f"{len(lags.broker_ms):,}/{lags.timers:,}"
        )
        details[f"lag {lags.label}: ms p50, p90, p99, max (broker time)"] = ", ".join(
            f"{percentile(lags.broker_ms, q):,.0f}" for q in (0.5, 0.9, 0.99, 1.0)
        )
        details[f"lag {lags.label}: occurred_at - due, s p50, p99, max"] = ", ".join(
            f"{percentile(lags.occurred_s, q):,.0f}" for q in (0.5, 0.99, 1.0)
        )
        if lags.engine_mean_ms is not None:
            details[f"lag {lags.label}: engine's own histogram, mean ms"] = round(
                lags.engine_mean_ms
            )
        if lags.during_load is not None:
            details[f"lag {lags.label}: fired while events were still being applied"] = (
                lags.during_load
            )
    pending_total = timers.pending_before + timers.pending_added
    return Report(
        benchmark="engine",
        title=(
            f"node engine: {args.engine_accounts:,} accounts on both reference paths, "
            "beside the raw consumer"
        ),
        figures=[
            Figure("raw aiokafka getmany, no processing (the limit)", raw.rate, "events/s"),
            Figure(
                "milepost engine, one process", throughput.rate, "events/s", raw.rate, GOAL_RATIO
            ),
            Figure(
                "milepost engine, two processes (limit: one process)",
                two.rate,
                "events/s",
                throughput.rate,
                SCALING_GOAL,
            ),
            Figure(
                "two processes, events/s per busy core of the machine (limit: one process's)",
                per_core[0],
                "events/s",
                per_core[1],
            ),
            Figure(
                f"PostgreSQL CPU per engine event, goal <= {DATABASE_GOAL_US:,.0f} us "
                "(limit: the engine's own CPU per event)",
                database_us,
                "us",
                engine_us,
            ),
            *_stall_figures(stalls),
            Figure(
                f"engine with {pending_total:,} timers pending (limit: without the "
                f"{timers.pending_added:,})",
                timers.with_pending.rate,
                "events/s",
                timers.without.rate,
            ),
            Figure(
                f"engine state in memory per account (goal <= {MEMORY_GOAL_BYTES:,} B)",
                per_account,
                "B",
            ),
            Figure("stored state per account-path row", stored_mean, "B"),
            Figure(
                f"timer fire lag p99, engine idle (goal <= {LAG_GOAL_MS:,.0f} ms)",
                _p99(timers.idle),
                "ms",
            ),
            Figure(
                f"timer fire lag p99, while consuming (goal <= {LAG_GOAL_MS:,.0f} ms)",
                _p99(timers.loaded),
                "ms",
            ),
        ],
        details=details,
        notes=notes,
    )


def _per_busy_core(phase: Phase) -> float:
    """Events/s per core the whole machine was busy during ``phase``: how far a second
    process scales on the cores it can get, apart from how many the machine has."""
    return phase.rate / max(phase.cpu.get("machine CPU busy (cores)", 0.0), 1e-9)


def _stall_figures(stalls: Stalls | None) -> list[Figure]:
    """The engine's event-loop lag p99 and longest stall over the throughput phase, beside
    the longest collection pause of the same span."""
    if stalls is None:
        return []
    longest_pause = max((pauses.longest()[1] for pauses in stalls.pauses.values()), default=0.0)
    return [
        Figure(
            f"engine event-loop lag p99, goal <= {STALL_GOAL_MS:,.0f} ms (bucket bound)",
            stalls.p99_ms,
            "ms",
        ),
        Figure(
            "engine's longest event-loop stall (bucket bound; limit: its longest collection)",
            1000 * stalls.loop.longest()[1],
            "ms",
            1000 * longest_pause,
        ),
    ]


def _p99(lags: Lags) -> float:
    return percentile(lags.broker_ms, 0.99)


BENCHMARK = Benchmark(
    name="engine",
    summary="milepost engine events/s vs raw aiokafka getmany; state memory; timer fire lag",
    add_arguments=add_arguments,
    run=run,
)
