"""Background workers kept running beside a service's API.

A worker that raises (or returns: workers run until cancelled) is logged with its
traceback, reported not ready (``/readyz`` names it) and started again after a backoff
that doubles from ``first_seconds`` up to ``max_seconds``. It is ready again once it has
run ``healthy_after_seconds`` since its restart, which also starts the backoff afresh.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Worker:
    """A named background worker; ``run`` starts it afresh each time it is called."""

    name: str
    run: Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    first_seconds: float = 1.0
    max_seconds: float = 60.0
    healthy_after_seconds: float = 30.0

    def wait(self, failures: int) -> float:
        """The wait before the restart that follows ``failures`` failures in a row."""
        return min(self.max_seconds, self.first_seconds * 2.0 ** min(failures - 1, 32))


class Supervisor:
    """Runs ``workers`` until cancelled (see the module docstring); cancelled, it returns
    only once every worker has finished its own way out, and a further cancellation
    meanwhile is passed on to the workers still leaving."""

    def __init__(self, workers: Sequence[Worker], backoff: Backoff | None = None) -> None:
        self.workers = tuple(workers)
        self.backoff = backoff or Backoff()
        self._restarted: dict[str, float] = {}
        """Per worker that failed: when it was started again (infinity: not yet)."""

    async def run(self) -> None:
        keeping = [
            asyncio.create_task(self._keep(worker), name=f"worker:{worker.name}")
            for worker in self.workers
        ]
        try:
            await asyncio.gather(*keeping)
        finally:
            await _stopped(keeping)

    def is_ready(self, name: str) -> bool:
        """Whether ``name`` never failed, or has run long enough since its restart."""
        restarted = self._restarted.get(name)
        if restarted is None:
            return True
        now = asyncio.get_running_loop().time()
        return now - restarted >= self.backoff.healthy_after_seconds

    def readiness(self, name: str) -> Callable[[], Awaitable[bool]]:
        """``/readyz``'s check of worker ``name``."""

        async def check() -> bool:
            return self.is_ready(name)

        return check

    async def _keep(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            started = loop.time()
            error: Exception | None = None
            try:
                await worker.run()
            except Exception as exc:  # any failure of the worker's own: logged, then restarted
                error = exc
            if loop.time() - started >= self.backoff.healthy_after_seconds:
                failures = 0
            failures += 1
            wait = self.backoff.wait(failures)
            self._restarted[worker.name] = math.inf
            logger.error(
                "background worker %s %s; it is not ready and restarts in %.1f s",
                worker.name,
                "stopped" if error is None else "failed",
                wait,
                exc_info=error,
                extra={"worker": worker.name, "failures": failures, "restart_in_seconds": wait},
            )
            await asyncio.sleep(wait)
            self._restarted[worker.name] = loop.time()


async def _stopped(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` (once each) and wait until all are done; cancelled meanwhile, cancel
    those still running again. (``gather`` returns as soon as one of its tasks is
    cancelled, and a ``TaskGroup`` does not pass on a second cancellation.)"""
    for task in tasks:
        if not task.cancelling():
            task.cancel()
    while pending := [task for task in tasks if not task.done()]:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            for task in pending:
                task.cancel()
