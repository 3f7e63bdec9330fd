"""A served app's background workers are supervised: one that fails makes ``/readyz``
answer 503 naming it, until it has been restarted and has run a while."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

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
