"""The console's page times with ``--console-accounts`` accounts in one workspace.

A fresh PostgreSQL database gets one workspace with both reference growth paths, the
reference metric definitions and playbooks, and that many platform merchants: their
states and histories on the path come from the pure engine core walking eight journeys
(one tenth of the accounts overdue in their node), cloned per account; each has a score
row, an owner, a delivery, and every fifth an open task. The figure of a page: the time
from its first request to its last answer when the browser's requests for it are sent
together, as the console sends them, to every service's admin API in this process (the
median and the 95th percentile of ``--console-repeats`` loads, each page opened at a
different account or node). No limit: the goal is a page within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.app import mount_messaging, publish_reference_playbooks
from services.messaging.contacts.models import AccountOwnerRow, ContactRow
from services.messaging.deliveries.models import DeliveryRow
from services.messaging.settings import MessagingSettings
from services.messaging.tasks.models import TaskRow
from services.node_engine.accounts.encoding import encode_state
from services.node_engine.accounts.models import AccountStateRow, TransitionRow
from services.node_engine.app import mount_engine
from services.node_engine.core.state import (
    AccountState,
    Observation,
    Timer,
    TimerFired,
    TimerKind,
    Transition,
)
from services.node_engine.core.transition import transition
from services.node_engine.paths.compiled import GrowthPath, compile_path
from services.node_engine.paths.files import GrowthPathFile
from services.node_engine.paths.service import load_catalog
from services.node_engine.settings import EngineSettings
from services.scoring.accounts.models import ScoringAccountRow
from services.scoring.app import mount_scoring, publish_reference_metrics
from services.scoring.metrics.encoding import encode
from services.scoring.metrics.store import MetricStore
from services.scoring.settings import ScoringSettings
from shared.bus.memory import InMemoryBus
from shared.clock import SystemClock
from shared.db import create_engine, create_session_factory
from shared.definitions import load_definition
from shared.observability.http import create_http_app
from shared.runtime import Resources
from shared.tenancy.admin_tokens import create_token
from tests.benchmarks import Benchmark, Figure, Report, progress, say
from tests.benchmarks._system import at_least, busy_before, kafka_and_postgres
from tests.benchmarks.engine import REFERENCE, _Cleanup, _fresh_database, _prepare_database
from tests.services.console.seeding import MERCHANTS

PATH_ID = "platform-merchant"
CHUNK = 5_000
OVERDUE_EVERY = 10
TASK_EVERY = 5
OWNERS = 40
T0 = datetime(2026, 6, 1, tzinfo=UTC)
TOKEN_LABEL = "console benchmark"


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--console-accounts",
        type=at_least(1),
        default=100_000,
        help="accounts in the workspace (default: %(default)s)",
    )
    group.add_argument(
        "--console-repeats",
        type=at_least(1),
        default=20,
        help="loads of each page (default: %(default)s)",
    )


async def run(args: argparse.Namespace) -> Report:
    _, server_url = kafka_and_postgres()
    _, notes = await busy_before("the database and the admin APIs")
    cleanup = _Cleanup("", server_url)
    try:
        return await _measure(args, server_url, cleanup, notes)
    finally:
        await cleanup.run()


async def _measure(
    args: argparse.Namespace, server_url: str, cleanup: _Cleanup, notes: list[str]
) -> Report:
    run_id = secrets.token_hex(4)
    workspace = f"bench{run_id}"
    database_url = await _fresh_database(server_url, f"milepost_bench_console_{run_id}", cleanup)
    await _prepare_database(database_url, workspace)
    db = create_engine(database_url, pool_size=20)
    resources = Resources(
        InMemoryBus(), db, create_session_factory(db), SystemClock(), CollectorRegistry()
    )
    try:
        await publish_reference_metrics(resources, workspace)
        await publish_reference_playbooks(resources, workspace)
        started = time.monotonic()
        await _fill(resources.sessions, workspace, args.console_accounts)
        filled = time.monotonic() - started
        async with resources.sessions() as session:
            token = await create_token(
                session, workspace=workspace, label=TOKEN_LABEL, clock=resources.clock
            )
            await session.commit()
        app = _app(resources)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://console",
            headers={"Authorization": f"Bearer {token.token}"},
            timeout=60,
        ) as client:
            loaded = {
                name: await _load(client, pages, args.console_repeats, name)
                for name, pages in _pages(workspace, args.console_accounts).items()
            }
    finally:
        await db.dispose()
    times = {name: found for name, (found, _) in loaded.items()}
    figures = [
        figure
        for name, found in times.items()
        for figure in (
            Figure(f"{name}: median", statistics.median(found), "ms"),
            Figure(f"{name}: p95", _p95(found), "ms"),
        )
    ]
    return Report(
        benchmark="console",
        title=f"console page times with {args.console_accounts:,} accounts in a workspace",
        figures=figures,
        details={
            "accounts": args.console_accounts,
            "loads per page": args.console_repeats,
            "data written (s)": round(filled, 1),
            "slowest page (ms)": round(max(max(t) for t in times.values()), 1),
            **{f"{name}: median per request (ms)": each for name, (_, each) in loaded.items()},
        },
        notes=notes,
    )


def _app(resources: Resources) -> FastAPI:
    """Every service's admin API in one app, as the embedded mode serves them."""
    app = create_http_app("Milepost", "The console's admin APIs", resources)
    mount_engine(app, EngineSettings(), resources)
    mount_scoring(app, ScoringSettings(), resources, load_paths=load_catalog)
    mount_messaging(
        app,
        MessagingSettings(
            unsubscribe_secret=SecretStr(secrets.token_urlsafe(32)),
            webhook_secret=SecretStr(secrets.token_urlsafe(32)),
        ),
        resources,
    )
    return app


Page = Callable[[int], list[tuple[str, dict[str, Any]]]]


def _pages(workspace: str, accounts: int) -> dict[str, Page]:
    """Each page's requests as the console sends them, for its ``n``th load."""
    engine, scoring, messaging = (
        f"/api/{service}/workspaces/{workspace}" for service in ("engine", "scoring", "messaging")
    )
    path = f"{engine}/paths/{PATH_ID}"
    stops = _stops()

    def account(n: int) -> str:
        return _account((n * 7919) % accounts)

    def quarters() -> list[tuple[str, dict[str, Any]]]:
        ends = [T0 - timedelta(days=91 * i) for i in range(4)]
        return [
            (
                f"{scoring}/portfolio/figures",
                {"start": (end - timedelta(days=91)).isoformat(), "end": end.isoformat()},
            )
            for end in ends
        ]

    return {
        "path": lambda n: [
            (path, {}),
            (f"{engine}/paths", {"limit": 200}),
            (f"{path}/funnel", {}),
            (f"{path}/overdue", {}),
            (f"{scoring}/portfolio", {}),
            (f"{path}/versions/1", {}),
        ],
        "accounts in a node": lambda n: [
            (
                f"{path}/accounts",
                {"stage": stops[n % len(stops)][0], "node": stops[n % len(stops)][1], "limit": 50},
            )
        ],
        "overdue accounts in a node": lambda n: [
            (
                f"{path}/accounts",
                {
                    "stage": stops[n % len(stops)][0],
                    "node": stops[n % len(stops)][1],
                    "overdue": "true",
                    "limit": 50,
                },
            )
        ],
        "account": lambda n: [
            (f"{engine}/accounts/{account(n)}", {}),
            (f"{engine}/accounts/{account(n)}/timeline", {"limit": 500}),
            (f"{scoring}/accounts/{account(n)}", {}),
            (f"{scoring}/accounts/{account(n)}/history", {"limit": 100}),
            (f"{messaging}/contacts", {"account": account(n), "limit": 200}),
            (f"{messaging}/deliveries", {"account": account(n), "limit": 200}),
            (f"{messaging}/plans", {"account": account(n), "limit": 200}),
            (f"{messaging}/tasks", {"account": account(n), "limit": 200}),
            (f"{messaging}/owners", {"account": account(n)}),
            (f"{path}/versions/1", {}),
        ],
        "portfolio": lambda n: [
            (f"{scoring}/portfolio", {}),
            (f"{scoring}/portfolio/cells", {}),
            (f"{scoring}/accounts", {"risk_level": "high", "limit": 25}),
            *quarters(),
        ],
        "work: open tasks": lambda n: [(f"{messaging}/tasks", {"status": "open", "limit": 200})],
        "work: deliveries log": lambda n: [
            (f"{messaging}/deliveries", {"status": "deferred", "limit": 50})
        ],
    }


async def _load(
    client: httpx.AsyncClient, page: Page, repeats: int, name: str
) -> tuple[list[float], dict[str, float]]:
    """Milliseconds of each load of ``page`` (its requests sent together, until the last
    answer; one load first to warm up, not counted), and each request's median."""
    found: list[float] = []
    requests: dict[str, list[float]] = {}

    async def timed(url: str, params: dict[str, Any]) -> tuple[str, float, httpx.Response]:
        started = time.perf_counter()
        answer = await client.get(url, params=params)
        return url, 1000 * (time.perf_counter() - started), answer

    for n in range(repeats + 1):
        started = time.perf_counter()
        answers = await asyncio.gather(*(timed(url, params) for url, params in page(n)))
        elapsed = 1000 * (time.perf_counter() - started)
        for url, took, answer in answers:
            if answer.status_code != 200:
                raise AssertionError(f"{name}: {answer.request.url} -> {answer.status_code}")
            if n:
                label = re.sub(r"m\d{7}", "{account}", url.split("/workspaces/", 1)[1])
                requests.setdefault(label.split("/", 1)[1], []).append(took)
        if n:
            found.append(elapsed)
    say(f"  {name}: median {statistics.median(found):.1f} ms")
    return found, {label: round(statistics.median(t), 1) for label, t in requests.items()}


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# -- the data -------------------------------------------------------------------------------


def _account(index: int) -> str:
    return f"m{index:07d}"


def _stops() -> list[tuple[str, str]]:
    """The (stage, node) where the journeys end."""
    return sorted({(s.stage, s.node) for s, _ in _journeys(_path(), "w") if s.node is not None})


def _path() -> GrowthPath:
    return compile_path(load_definition(REFERENCE / f"{PATH_ID}.yaml", GrowthPathFile), version=1)


def _journeys(path: GrowthPath, workspace: str) -> list[tuple[AccountState, list[Transition]]]:
    """The seeded merchants' journeys through the pure core, each once on time and once
    overdue in its last node (even indexes on time, odd ones overdue)."""
    found = []
    for account, (_, _, events) in MERCHANTS.items():
        state: AccountState | None = None
        history: list[Transition] = []
        now = T0
        for index, name in enumerate(["(group)", *events]):
            now += timedelta(hours=5)
            observed = Observation(
                f"{account}-{index}",
                workspace,
                account,
                "group" if index == 0 else "track",
                None if index == 0 else ("Order Completed" if name == "order" else name),
                "u1",
                frozenset(),
                {"amount": 120} if name == "order" else {},
                {"business_type": "platform"} if index == 0 else {},
                "segment",
                int(now.timestamp()),
            )
            decision = transition(state, observed, path=path, now=now)
            assert decision.state is not None
            state, history = decision.state, history + list(decision.transitions)
        assert state is not None
        assert state.node is not None
        found.append((state, history))
        late = now + timedelta(days=30)
        timer = Timer(
            id=f"due-{account}",
            path_id=PATH_ID,
            due_at=int(late.timestamp()),
            kind=TimerKind.DUE,
            node=state.node,
            visit=state.nodes[state.node].visits,
        )
        overdue = transition(state, TimerFired(timer), path=path, now=late)
        assert overdue.state is not None
        found.append((overdue.state, history + list(overdue.transitions)))
    return found


def _chunks(total: int) -> Iterator[range]:
    for start in range(0, total, CHUNK):
        yield range(start, min(total, start + CHUNK))


async def _fill(sessions: async_sessionmaker[AsyncSession], workspace: str, accounts: int) -> None:
    journeys = _journeys(_path(), workspace)
    now = datetime.now(UTC)
    with progress("writing the accounts", accounts, "accounts") as advance:
        for chunk in _chunks(accounts):
            states, transitions, scores, owners, deliveries, tasks = [], [], [], [], [], []
            for i in chunk:
                picked = 2 * (i % len(MERCHANTS)) + (1 if i % OVERDUE_EVERY == 0 else 0)
                template, history = journeys[picked]
                account = _account(i)
                state = msgspec.structs.replace(template, account_id=account)
                states.append(_state_row(state, now))
                transitions += [_transition_row(state, t, k) for k, t in enumerate(history)]
                scores.append(_score_row(workspace, account, i, now))
                owners.append(
                    {
                        "workspace_id": workspace,
                        "account_id": account,
                        "contact_id": f"owner:{i % OWNERS}",
                        "updated_at": now,
                    }
                )
                deliveries.append(_delivery_row(workspace, account, i, now))
                if i % TASK_EVERY == 0:
                    tasks.append(_task_row(workspace, account, i, now))
            async with sessions() as session:
                for table, rows in (
                    (AccountStateRow, states),
                    (TransitionRow, transitions),
                    (ScoringAccountRow, scores),
                    (AccountOwnerRow, owners),
                    (DeliveryRow, deliveries),
                    (TaskRow, tasks),
                ):
                    if rows:
                        await session.execute(insert(table), rows)
                await session.commit()
            advance(len(chunk))
    async with sessions() as session:
        await session.execute(
            insert(ContactRow),
            [_owner_contact(workspace, n, now) for n in range(OWNERS)],
        )
        await session.commit()
    async with sessions() as session:  # the statistics a long-running database has
        await session.execute(text("ANALYZE"))
        await session.commit()


def _state_row(state: AccountState, now: datetime) -> dict[str, Any]:
    return {
        "workspace_id": state.workspace_id,
        "account_id": state.account_id,
        "path_id": state.path_id,
        "path_version": state.path_version,
        "stage": state.stage,
        "node": state.node,
        "tier": state.tier,
        "last_error": None,
        "state": encode_state(state),
        "updated_at": now,
    }


def _transition_row(state: AccountState, step: Transition, k: int) -> dict[str, Any]:
    return {
        "transition_id": f"{state.account_id}-{k}",
        "workspace_id": state.workspace_id,
        "account_id": state.account_id,
        "path_id": state.path_id,
        "path_version": state.path_version,
        "kind": step.kind.value,
        "stage": step.stage,
        "node": step.node,
        "reason": step.reason,
        "cause_id": step.cause_id,
        "target_roles": list(step.target_roles),
        "payload": dict(step.payload),
        "occurred_at": datetime.fromtimestamp(step.occurred_at, UTC),
    }


RISKS = ("low", "low", "medium", "high")


def _score_row(workspace: str, account: str, i: int, now: datetime) -> dict[str, Any]:
    risk = RISKS[i % len(RISKS)]
    health = float((i * 37) % 100)
    band = "healthy" if health >= 70 else "watch" if health >= 40 else "at_risk"
    signal = {
        "kind": "logins_falling",
        "severity": risk,
        "measure": 0.4,
        "raise_at": 0.5,
        "sentence": "Logins fell by 60% in 28 days.",
        "figures": {},
    }
    return {
        "workspace_id": workspace,
        "account_id": account,
        "partition": i % 12,
        "revision": 1,
        "metrics": encode(MetricStore()),
        "facts": {"values": {"account.name": account}, "roles": ["admin"], "paths": [PATH_ID]},
        "health": health,
        "band": band,
        "risk_level": risk,
        "risk": {"level": risk, "signals": [signal] if risk != "low" else []},
        "tier": f"L{1 + i % 5}",
        "peers": None,
        "explanation": {
            "health": {"score": health, "band": band, "components": [], "missing": []},
            "north_star": {
                "metric": "orders",
                "name": "Orders completed",
                "window": "P28D",
                "value": 3.0,
            },
        },
        "north_star": float(i % 30),
        "contract_value": None,
        "acquisition_cost": None,
        "currency": None,
        "renewal_at": None,
        "evaluated_at": now,
        "updated_at": now,
    }


def _delivery_row(workspace: str, account: str, i: int, now: datetime) -> dict[str, Any]:
    status = ("sent", "sent", "deferred", "suppressed")[i % 4]
    return {
        "delivery_id": f"dlv_{i:032d}",
        "workspace_id": workspace,
        "account_id": account,
        "trigger_id": f"trg{i}",
        "contact_id": f"u{i}",
        "step_id": "platform-merchant-outreach/overdue_reminder",
        "playbook_id": "platform-merchant-outreach",
        "playbook_version": 1,
        "channel": "email",
        "target": {"email": f"u{i}@example.com"},
        "subject": "Reminder",
        "body": "Your node is overdue.",
        "category": "onboarding",
        "priority": 1,
        "status": status,
        "reason": "quiet hours" if status == "deferred" else None,
        "attempts": 1,
        "provider_message_id": None,
        "planned_at": now - timedelta(seconds=i),
        "not_before": now,
        "due_at": now if status == "deferred" else None,
        "finished_at": None if status == "deferred" else now,
        "trace": {},
    }


def _task_row(workspace: str, account: str, i: int, now: datetime) -> dict[str, Any]:
    return {
        "task_id": f"tsk_{i:032d}",
        "workspace_id": workspace,
        "account_id": account,
        "trigger_id": f"trg{i}",
        "step_id": "platform-merchant-outreach/owner_call",
        "playbook_id": "platform-merchant-outreach",
        "playbook_version": 1,
        "owner_contact_id": f"owner:{i % OWNERS}",
        "title": f"Call {account}",
        "description": None,
        "priority": 1,
        "status": "open" if i % 3 else "done",
        "version": 1,
        "note": None,
        "due_at": now + timedelta(days=(i % 7) - 3),
        "escalate_at": None,
        "escalate_to": None,
        "escalated_at": None,
        "created_at": now - timedelta(seconds=i),
        "updated_at": now,
    }


def _owner_contact(workspace: str, n: int, now: datetime) -> dict[str, Any]:
    return {
        "workspace_id": workspace,
        "contact_id": f"owner:{n}",
        "account_id": None,
        "name": f"CSM {n}",
        "email": f"csm{n}@ops.example",
        "phone": None,
        "chat_app_ids": {},
        "roles": ",account_owner,",
        "locale": None,
        "timezone": None,
        "consent": {},
        "bounced": [],
        "updated_at": now,
    }


BENCHMARK = Benchmark(
    name="console",
    summary="console page times (ms) with 100,000 accounts in a workspace",
    add_arguments=add_arguments,
    run=run,
)
