"""The scenarios, and running one: deploy, load, disturb, settle, collect, compare.

A run settles when every consumer group has committed its input topics to their end and no
delivery is queued or retrying. *Time to recover* is from the end of the last fault (the
end of the load, for the undisturbed run and the flaky receiver) until the run settled.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from shared.bus import OutgoingRecord
from shared.contracts import Topic
from tests.chaos.load import Sent
from tests.chaos.outputs import Comparison
from tests.chaos.system import Deployment, PrivateServices
from tests.chaos.workload import Workload, workload

SETTLE_POLL_S = 1.0
RSS_POLL_S = 0.5
FLAKY_SCRIPT = 100_000
RSS_LIMIT = 1024**3
"""Peak resident memory a service may reach during the burst."""
POISON = (Topic.EVENTS, Topic.ACCOUNT_EVENTS, Topic.TRIGGERS, Topic.SCORES)


@dataclass(frozen=True, slots=True)
class Scale:
    accounts: int
    rate: float
    """Sustained events/s."""
    engines: int
    kills: int
    """SIGKILLs per service in the kill scenario."""
    settle_s: float
    lanes: int = 16
    batch: int = 10

    def override(self, *, accounts: int | None, rate: float | None) -> Scale:
        return replace(self, accounts=accounts or self.accounts, rate=rate or self.rate)

    def workload(self, seed: int, workspace: str) -> Workload:
        return workload(
            seed, self.accounts, workspace=workspace, lanes=self.lanes, batch=self.batch
        )


@dataclass(slots=True)
class Run:
    """One scenario's run, as its fault sees it."""

    deployment: Deployment
    rng: random.Random
    scale: Scale
    load_seconds: float
    private: PrivateServices | None
    started: float = field(default_factory=time.monotonic)
    fault_ended: float = 0.0
    fault_returned: float | None = None
    """When the fault's coroutine returned (None while it runs)."""
    burst_end: float = 0.0
    """Seconds into the load when the burst ends (the burst scenario)."""
    notes: list[str] = field(default_factory=list)
    sent: Sent | None = None

    def moments(self, count: int) -> list[float]:
        """``count`` seeded moments in the middle 70% of the load, in order."""
        return sorted(self.rng.uniform(0.1, 0.8) * self.load_seconds for _ in range(count))

    def clients_give_up_at(self) -> float:
        """When the load's clients stop retrying a request: ``settle_s`` after the load or
        after the fault, whichever ends later; never while the fault lasts (an SDK keeps
        its queue through an outage, however long the broker takes to come back)."""
        if self.fault_returned is None:
            return math.inf
        return max(self.started + self.load_seconds, self.fault_returned) + self.scale.settle_s

    async def until(self, moment: float) -> None:
        await asyncio.sleep(max(0.0, self.started + moment - time.monotonic()))

    def ended(self) -> None:
        self.fault_ended = time.monotonic()


Fault = Callable[[Run], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    fault: Fault
    private: bool = False
    """Runs on the private broker and cluster (it stops them)."""
    flaky_receiver: bool = False
    burst: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    sent: int
    acknowledged: int
    comparison: Comparison
    recover_s: float
    notes: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.comparison.problems() and not any(n.startswith("FAIL") for n in self.notes)


# -- the faults --------------------------------------------------------------------------------


async def undisturbed(run: Run) -> None:
    """Nothing happens."""


async def sigkill(run: Run) -> None:
    """Each service SIGKILLed ``kills`` times at seeded moments, restarted after a pause."""
    names = run.deployment.names
    plan = sorted((moment, name) for name in names for moment in run.moments(run.scale.kills))
    for moment, name in plan:
        await run.until(moment)
        if name in run.deployment.processes:
            run.deployment.kill(name)
            await asyncio.sleep(run.rng.uniform(0.2, 1.5))
            await run.deployment.start(name)
    run.notes.append(f"{len(plan)} SIGKILLs ({run.scale.kills} per service)")
    run.ended()


async def churn(run: Run) -> None:
    """Engine members join and are SIGKILLed while the load runs: a rebalance each time."""
    deployment, added, killed = run.deployment, 0, 0
    for moment in run.moments(2 * run.scale.kills + 2):
        await run.until(moment)
        engines = [n for n in deployment.processes if n.startswith("engine-")]
        if len(engines) > 1 and run.rng.random() < 0.5:
            deployment.kill(run.rng.choice(engines))
            killed += 1
        else:
            deployment.engines += 1
            await deployment.start(f"engine-{deployment.engines}")
            added += 1
    run.notes.append(f"{added} engine members added, {killed} SIGKILLed")
    run.ended()


async def broker_restart(run: Run) -> None:
    """The private broker stopped mid-load for a few seconds, then started again."""
    await _outage(run, "kafka", "broker", run.rng.uniform(5.0, 8.0))


async def postgres_restart(run: Run) -> None:
    """The private PostgreSQL cluster stopped mid-load for a few seconds, then started."""
    await _outage(run, "pg", "PostgreSQL", run.rng.uniform(4.0, 6.0))


async def _outage(run: Run, service: str, name: str, seconds: float) -> None:
    assert run.private is not None
    await run.until(run.load_seconds * 0.3)
    await run.private.run(f"{service}-down")
    down = time.monotonic()
    await asyncio.sleep(seconds)
    await run.private.run(f"{service}-up")
    run.notes.append(f"{name} down {time.monotonic() - down:.1f}s")
    run.ended()


async def burst(run: Run) -> None:
    """The load itself bursts (see ``runner.BURST``); the fault ends with the burst."""
    await run.until(run.burst_end)
    run.ended()


async def poison(run: Run) -> None:
    """Records no consumer can read, on every consumed topic, at seeded moments."""
    bus = run.deployment.bus()
    await bus.start()
    try:
        for moment, topic in zip(run.moments(len(POISON)), POISON, strict=True):
            await run.until(moment)
            value = b'{"poison": "' + topic.encode() + b'", "not": "a valid record"'
            await bus.publish([OutgoingRecord(topic, b"chaos/a/poison", value)])
    finally:
        await bus.close()
    run.ended()


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("sigkill", "SIGKILL of each service, several times, at seeded moments", sigkill),
        Scenario("churn", "engine members added and SIGKILLed under load (rebalances)", churn),
        Scenario("broker", "Kafka broker stopped and restarted mid-load", broker_restart, True),
        Scenario("postgres", "PostgreSQL stopped and restarted mid-load", postgres_restart, True),
        Scenario(
            "webhook",
            "receiver fails half the requests, times some out",
            undisturbed,
            flaky_receiver=True,
        ),
        Scenario("poison", "unreadable records on every consumed topic", poison),
        Scenario("burst", "10x the sustained rate for a while", burst, burst=True),
    )
}
SCALES = {
    "small": Scale(accounts=24, rate=40.0, engines=2, kills=1, settle_s=60.0),
    "full": Scale(accounts=300, rate=100.0, engines=3, kills=3, settle_s=120.0),
}
"""``small``: the tests in ``make test``; ``full``: ``make chaos``."""
UNDISTURBED = Scenario("undisturbed", "the same workload, nothing disturbed", undisturbed)
