"""A served app's background workers are supervised: one that fails makes ``/readyz``
answer 503 naming it, until it has been restarted and has run a while. A stop signal lets
them leave gracefully; a second one cuts the leave short."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import create_async_engine

from services.serving import serve
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.db import create_session_factory
from shared.observability.http import create_http_app
from shared.runtime import Resources
from shared.supervision import Backoff, Worker
from tests.processes import free_port

SERVED = """
import asyncio, sys
from pathlib import Path
from datetime import UTC, datetime
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import create_async_engine
from services.serving import serve
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.db import create_session_factory
from shared.observability.http import create_http_app
from shared.runtime import Resources
from shared.supervision import Worker

port, leave_seconds, out = int(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])

async def leaves_slowly() -> None:
    try:
        await asyncio.Event().wait()
    finally:
        out.write_text("leaving")
        await asyncio.sleep(leave_seconds)
        out.write_text("left")

async def main() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    resources = Resources(
        InMemoryBus(), engine, create_session_factory(engine), clock, CollectorRegistry()
    )
    app = create_http_app("test", "test", resources)
    await serve(app, host="127.0.0.1", port=port, background=[Worker("slow", leaves_slowly)])
    out.write_text(out.read_text() + ", served")
    await engine.dispose()

asyncio.run(main())
"""


async def test_a_failing_worker_makes_readyz_fail_until_it_runs_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    resources = Resources(
        InMemoryBus(),
        engine,
        create_session_factory(engine),
        FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)),
        CollectorRegistry(),
    )
    await resources.bus.start()
    app = create_http_app("test", "test", resources)
    runs: list[int] = []

    async def fails_once() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("the worker broke")
        await asyncio.Event().wait()

    answers: list[tuple[int, bool | None]] = []

    async def fake_uvicorn(_server: uvicorn.Server) -> None:
        """Instead of listening: ask /readyz until the worker is back."""
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            while not answers or answers[-1][0] != 200 or len(runs) < 2:
                ready = await client.get("/readyz")
                answers.append((ready.status_code, ready.json()["checks"].get("worker:flaky")))
                await asyncio.sleep(0.005)

    monkeypatch.setattr(uvicorn.Server, "serve", fake_uvicorn)
    backoff = Backoff(first_seconds=0.05, max_seconds=0.05, healthy_after_seconds=0.2)
    await serve(
        app, host="127.0.0.1", port=1, background=[Worker("flaky", fails_once)], backoff=backoff
    )

    assert (503, False) in answers
    assert answers[-1] == (200, True)
    assert len(runs) == 2
    await resources.bus.close()
    await engine.dispose()


@contextmanager
def _served(tmp_path: Path, leave_seconds: float) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """The script above in a process of its own, once it answers ``/healthz``; killed on
    the way out if it is still running."""
    out, port = tmp_path / "worker", free_port()
    process = subprocess.Popen(  # noqa: S603 - the test's own script
        [sys.executable, "-c", SERVED, str(port), str(leave_seconds), str(out)],
        stderr=subprocess.PIPE,
    )
    try:
        _wait_until_serving(port, process)
        yield process, out
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _wait_until_serving(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    raise AssertionError("the served script did not answer /healthz")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_lets_the_workers_leave_before_serve_returns(
    tmp_path: Path, stop: signal.Signals
) -> None:
    with _served(tmp_path, leave_seconds=0.5) as (process, out):
        process.send_signal(stop)
        _, errors = process.communicate(timeout=30)
        assert process.returncode == 0, errors.decode()
        assert out.read_text() == "left, served"


def test_a_second_stop_signal_cuts_the_leave_short(tmp_path: Path) -> None:
    with _served(tmp_path, leave_seconds=600) as (process, out):
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
        assert process.returncode == 0, errors.decode()
        assert out.read_text() == "leaving, served"
