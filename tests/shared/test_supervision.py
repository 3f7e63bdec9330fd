"""A background worker that fails is logged with its traceback, reported not ready and
started again after a backoff; it is ready again once it has run a while. Cancelled, the
supervisor waits for every worker's way out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from shared.supervision import Backoff, Supervisor, Worker

QUICK = Backoff(first_seconds=0.01, max_seconds=0.01, healthy_after_seconds=0.2)


class Crashing:
    """Raises on its first ``crashes`` runs, then runs until cancelled."""

    def __init__(self, crashes: int) -> None:
        self.crashes = crashes
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.crashes:
            raise RuntimeError(f"crash {self.runs}")
        await asyncio.Event().wait()


async def until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 (polls what the supervisor keeps)
        await asyncio.sleep(0.005)


def test_the_backoff_doubles_up_to_its_limit() -> None:
    backoff = Backoff(first_seconds=1, max_seconds=10)
    assert [backoff.wait(n) for n in (1, 2, 3, 4, 5, 1000)] == [1, 2, 4, 8, 10, 10]


async def test_a_failed_worker_is_logged_not_ready_restarted_then_ready_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crashing, steady = Crashing(crashes=2), Crashing(crashes=0)
    supervisor = Supervisor([Worker("crashing", crashing.run), Worker("steady", steady.run)], QUICK)
    check = supervisor.readiness("crashing")
    running = asyncio.create_task(supervisor.run())
    try:
        await until(lambda: crashing.runs >= 1 and not supervisor.is_ready("crashing"))
        assert not await check()
        assert supervisor.is_ready("steady")
        await until(lambda: crashing.runs == 3)  # restarted after each failure
        await until(lambda: supervisor.is_ready("crashing"))  # has run a while since
        assert await check()
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    failures = [r for r in caplog.records if getattr(r, "worker", None) == "crashing"]
    assert len(failures) == 2
    assert failures[0].levelno == logging.ERROR
    assert failures[0].exc_info is not None
    assert str(failures[0].exc_info[1]) == "crash 1"
    assert steady.runs == 1


async def test_a_worker_that_returns_is_restarted_too(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []

    async def returns() -> None:
        runs.append(1)

    running = asyncio.create_task(Supervisor([Worker("brief", returns)], QUICK).run())
    await until(lambda: len(runs) >= 2)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert "background worker brief stopped" in caplog.text


def leaving(name: str, seconds: float, left: list[str]) -> Worker:
    """Runs until cancelled, then takes ``seconds`` to leave and notes it in ``left``."""

    async def run() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(seconds)
            left.append(name)

    return Worker(name, run)


async def test_cancelled_it_returns_only_once_every_worker_has_left() -> None:
    left: list[str] = []
    supervisor = Supervisor([leaving("quick", 0, left), leaving("slow", 0.2, left)], QUICK)
    running = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert left == ["quick", "slow"]


async def test_cancelled_again_it_cuts_the_workers_leave_short() -> None:
    left: list[str] = []
    running = asyncio.create_task(Supervisor([leaving("slow", 600, left)], QUICK).run())
    await asyncio.sleep(0.01)
    running.cancel()
    await asyncio.sleep(0.01)
    assert not running.done()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, timeout=5)
    assert left == []
