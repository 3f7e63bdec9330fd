"""Request metrics count and time requests per route template, with the answer's status."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import create_async_engine

from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.db import create_session_factory
from shared.observability.http import create_http_app
from shared.runtime import Resources

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_requests_are_counted_per_route_template_and_status() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    registry = CollectorRegistry()
    resources = Resources(
        InMemoryBus(), engine, create_session_factory(engine), FrozenClock(T0), registry
    )
    app = create_http_app("test", "test", resources)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        assert (await client.get("/items/1")).status_code == 200
        assert (await client.get("/items/2")).status_code == 200
        assert (await client.get("/items/x")).status_code == 422
        assert (await client.get("/nowhere")).status_code == 404

    def count(route: str, status: str) -> float | None:
        labels = {"route": route, "method": "GET", "status": status}
        return registry.get_sample_value("milepost_http_requests_total", labels)

    assert count("/items/{item_id}", "200") == 2
    assert count("/items/{item_id}", "422") == 1
    assert count("unmatched", "404") == 1
    timed = registry.get_sample_value(
        "milepost_http_request_duration_seconds_count",
        {"route": "/items/{item_id}", "method": "GET"},
    )
    assert timed == 3
    await engine.dispose()
