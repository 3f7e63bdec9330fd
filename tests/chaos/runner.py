"""Running one scenario end to end, and the table of results."""

from __future__ import annotations

import asyncio
import random
import secrets
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from tests.benchmarks import say
from tests.benchmarks._system import tail
from tests.benchmarks.engine import _Cleanup
from tests.chaos.load import Pace, offer
from tests.chaos.outputs import Outputs, collect, compare, flaky_answers
from tests.chaos.scenarios import (
    FLAKY_SCRIPT,
    POISON,
    RSS_LIMIT,
    RSS_POLL_S,
    SETTLE_POLL_S,
    Row,
    Run,
    Scale,
    Scenario,
)
from tests.chaos.system import WORKSPACE, Deployment, PrivateServices, Servers, own_warnings
from tests.services.messaging.http_sink import Answer, Sink, running_sink

BURST = (0.3, 0.15, 10.0)
"""The burst starts 30% into the load and lasts 15% of it (at the sustained rate), at 10x."""


async def run_scenario(
    scenario: Scenario,
    scale: Scale,
    seed: int,
    servers: Servers,
    *,
    private: PrivateServices | None = None,
    undisturbed: Outputs | None = None,
) -> tuple[Row, Outputs]:
    """Deploy, load, disturb, settle, collect; the row compares with ``undisturbed`` (the
    run's own outputs when none: the undisturbed run itself)."""
    rng = random.Random(f"{seed}/{scenario.name}")
    answers = flaky_answers(rng, FLAKY_SCRIPT) if scenario.flaky_receiver else []
    cleanup = _Cleanup(servers.bootstrap, servers.server_url)
    with tempfile.TemporaryDirectory(prefix=f"milepost-chaos-{scenario.name}-") as tmp:
        async with running_sink(Sink(script=deque(answers))) as sink:
            deployment = Deployment(
                servers, Path(tmp), secrets.token_hex(4), f"{sink.url}/hooks", scale.engines
            )
            try:
                await deployment.prepare(cleanup)
                await deployment.start_all()
                row, outputs = await _drive(
                    scenario, scale, seed, deployment, rng, private, sink, answers, undisturbed
                )
                if not row.passed:
                    _say_logs(deployment, Path(tmp))
                return row, outputs
            except BaseException:
                _say_logs(deployment, Path(tmp))
                raise
            finally:
                await deployment.stop_all()
                await cleanup.run()


async def _drive(
    scenario: Scenario,
    scale: Scale,
    seed: int,
    deployment: Deployment,
    rng: random.Random,
    private: PrivateServices | None,
    sink: Sink,
    answers: list[Answer],
    undisturbed: Outputs | None,
) -> tuple[Row, Outputs]:
    work = scale.workload(seed, WORKSPACE)
    burst = BURST if scenario.burst else (0.0, 0.0, 1.0)
    steady = work.size / scale.rate
    pace = Pace(scale.rate, burst[0] * steady, burst[1] * steady, burst[2])
    run = Run(deployment, rng, scale, pace.at(work.size), private)
    run.burst_end = pace.burst_at + pace.burst_seconds
    say(
        f"[{scenario.name}] {work.size:,} events of {sum(work.accounts.values())} accounts over {run.load_seconds:.0f}s"
    )
    sampler = asyncio.create_task(_sample(deployment))
    load = asyncio.create_task(
        offer(
            deployment.url("ingest"),
            deployment.write_key,
            work,
            pace,
            deadline=run.clients_give_up_at,
        )
    )
    try:
        await scenario.fault(run)
        run.fault_returned = time.monotonic()
        recovered = asyncio.create_task(_recovered(deployment, scale.settle_s + run.load_seconds))
        run.sent = await load
        if not run.fault_ended:  # nothing happened: from the end of the load
            run.fault_ended = time.monotonic()
            recovered.cancel()
            recovered = asyncio.create_task(_recovered(deployment, scale.settle_s))
        caught_up = await recovered
    finally:
        load.cancel()
        sampler.cancel()
    say(
        f"[{scenario.name}] load done: {len(run.sent.acknowledged):,} of {len(run.sent.sent):,} acknowledged; settling"
    )
    settled = await _settle(deployment, scale.settle_s)
    outputs = await collect(deployment, sink.received, answers)
    comparison = compare(outputs, undisturbed or outputs, failing_receiver=scenario.flaky_receiver)
    recover = caught_up - run.fault_ended if caught_up is not None else float("nan")
    notes = [*run.notes, *_checks(scenario, run, deployment, outputs, settled, scale)]
    if settled is None:
        notes.extend(await _still_behind(deployment))
    expected = (undisturbed or outputs).scored
    notes.append(f"{outputs.scored} risk_changed triggers (undisturbed {expected}), not compared")
    row = Row(
        scenario.name,
        len(run.sent.sent),
        len(run.sent.acknowledged),
        comparison,
        recover,
        tuple(notes),
    )
    return row, outputs


def _say_logs(deployment: Deployment, folder: Path) -> None:
    for name in deployment.names:
        say(f"{name} log (last lines):\n{tail(folder / f'{name}.log', 30)}")


async def _still_behind(deployment: Deployment) -> list[str]:
    """What kept a run from settling: each consumer group's lag, the pending deliveries
    and, per process, what it reports of itself (retries, lag) and its own warnings."""
    try:
        lags = await deployment.lag_by_group()
        pending = await deployment.pending_deliveries()
    except Exception as exc:  # a server still down: say so instead
        notes = [f"still behind: not measurable ({exc!r})"]
    else:
        behind = {group: lag for group, lag in lags.items() if lag} or "none"
        notes = [f"still behind: lag by group {behind}, {pending} deliveries pending"]
    for name in deployment.names:
        notes.append(f"{name} reports: {await deployment.self_report(name)}")
        log = deployment.workdir / f"{name}.log"
        notes.extend(f"{name} said: {line}" for line in own_warnings(log))
    return notes


async def _sample(deployment: Deployment) -> None:
    while True:
        deployment.sample_rss()
        await asyncio.sleep(RSS_POLL_S)


async def _recovered(deployment: Deployment, limit_s: float) -> float | None:
    """When every consumer group had committed what was on its topics when this started
    (the backlog of the fault), or None if not within ``limit_s``."""
    deadline = time.monotonic() + limit_s
    upto = None
    while time.monotonic() < deadline:
        try:
            upto = upto or await deployment.ends()
            if await deployment.lag(upto) == 0:
                return time.monotonic()
        except Exception as exc:  # the broker still coming back
            say(f"  not recovered yet: {exc!r}"[:120])
        await asyncio.sleep(RSS_POLL_S)
    return None


async def _settle(deployment: Deployment, limit_s: float) -> float | None:
    """When every group had committed its input and no delivery was pending (seen twice
    in a row), or None if that did not happen within ``limit_s``."""
    deadline = time.monotonic() + limit_s
    first: float | None = None
    while time.monotonic() < deadline:
        checked = time.monotonic()
        try:
            idle = await deployment.lag() == 0 and await deployment.pending_deliveries() == 0
        except Exception:  # a server still coming back: not settled yet
            idle = False
        if idle and first is not None:
            return first
        first = checked if idle else None
        await asyncio.sleep(SETTLE_POLL_S)
    return None


def _checks(
    scenario: Scenario,
    run: Run,
    deployment: Deployment,
    outputs: Outputs,
    settled: float | None,
    scale: Scale,
) -> list[str]:
    """What else must hold, as notes; a failed one starts with FAIL."""
    sent = run.sent
    assert sent is not None
    notes = [f"FAIL: {name} exited by itself" for name in deployment.crashed()]
    if settled is None:
        notes.append(f"FAIL: not settled {scale.settle_s:.0f}s after the load")
    if unacknowledged := len(sent.sent - sent.acknowledged):
        notes.append(f"FAIL: {unacknowledged} events never acknowledged")
    notes.extend(f"FAIL: refused {answer}" for answer in sent.rejected[:3])
    if scenario.name == "broker":
        notes.append(
            f"{sent.retry_after} answers 503 with Retry-After; answers {dict(sent.answers)}"
        )
        if not sent.retry_after:
            notes.append(
                "FAIL: ingest never answered 503 with Retry-After while the broker was down"
            )
    if scenario.name == "poison":
        notes.extend(_poison_checks(outputs))
    if outputs.given_up_for:
        notes.append(f"deliveries dead-lettered, by reason: {dict(outputs.given_up_for)}")
    if scenario.flaky_receiver:
        notes.append(
            f"{outputs.repeats} repeats dropped by webhook-id, "
            f"{len(outputs.given_up)} deliveries dead-lettered after the last try"
        )
    if scenario.burst:
        peak, name = max(((v, k) for k, v in deployment.peak_rss.items()), default=(0, "-"))
        notes.append(
            f"peak RSS {peak / 2**20:.0f} MiB ({name}); all: "
            + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in sorted(deployment.peak_rss.items()))
        )
        if peak > RSS_LIMIT:
            notes.append(f"FAIL: a service grew over {RSS_LIMIT / 2**20:.0f} MiB")
    return notes


def _poison_checks(outputs: Outputs) -> list[str]:
    notes = []
    for topic in POISON:
        letters = [
            letter
            for letter in outputs.dead_letters
            if f'"poison": "{topic}"' in letter.value and letter.reason
        ]
        groups = sorted({letter.consumer_group.rpartition("-")[2] for letter in letters})
        if not letters:
            notes.append(f"FAIL: the poison record on {topic} reached no DLQ")
        else:
            notes.append(
                f"{topic}: dead-lettered by {', '.join(groups)} ({letters[0].reason[:60]})"
            )
    return notes


HEADER = (
    "scenario",
    "sent",
    "acknowledged",
    "triggers",
    "deliveries",
    "lost",
    "duplicated",
    "repeated (same id)",
    "time to recover",
)


def table(rows: Sequence[Row]) -> str:
    """The results, one line a scenario, with its notes under the table."""
    cells = [HEADER] + [
        (
            row.scenario,
            f"{row.sent:,}",
            f"{row.acknowledged:,}",
            f"{row.comparison.triggers:,}",
            f"{row.comparison.deliveries:,}",
            f"{row.comparison.lost:,}",
            f"{row.comparison.duplicated:,}",
            f"{row.comparison.repeated:,}",
            f"{row.recover_s:.1f} s",
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    lines = []
    for index, line in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        for note in [*row.comparison.problems(), *row.notes]:
            lines.append(f"  {row.scenario}: {note}")
    return "\n".join(lines)
