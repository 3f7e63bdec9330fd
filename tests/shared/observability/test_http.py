"""Request metrics count and time requests per route template, with the answer's status;
every route refuses a body over the app's limit before reading or authenticating it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import Depends, HTTPException, Request
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


LIMIT = 64 * 1024
MEBIBYTE = b"x" * (1024 * 1024)


@dataclass
class Upload:
    """A 64 MiB body, a mebibyte at a time; ``pulled`` counts the chunks read from it."""

    pulled: int = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(64):
            self.pulled += 1
            yield MEBIBYTE


@asynccontextmanager
async def limited_app() -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    """An app limited to 64 KiB with one authenticated route; the list names each
    authentication attempt."""
    engine = create_async_engine("sqlite+aiosqlite://")
    resources = Resources(
        InMemoryBus(), engine, create_session_factory(engine), FrozenClock(T0), CollectorRegistry()
    )
    app = create_http_app("test", "test", resources, max_body_bytes=LIMIT)
    checked: list[str] = []

    async def authenticated(request: Request) -> None:
        checked.append(request.url.path)
        raise HTTPException(401, "no token")

    @app.post("/admin/things", dependencies=[Depends(authenticated)])
    async def things(body: dict[str, Any]) -> dict[str, Any]:
        return body

    @app.post("/echo")
    async def echo(body: dict[str, Any]) -> dict[str, Any]:
        return body

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client, checked
    await engine.dispose()


def too_large() -> dict[str, Any]:
    message = f"body exceeds {LIMIT} bytes"
    return {
        "success": False,
        "code": "too_large",
        "message": f"body: {message}",
        "errors": [{"field": "body", "code": "too_large", "message": message, "limit": LIMIT}],
    }


async def test_a_declared_64_mib_body_is_refused_unread_and_unauthenticated() -> None:
    upload = Upload()
    async with limited_app() as (client, checked):
        answer = await client.post(
            "/admin/things",
            content=upload,
            headers={"content-length": str(64 * len(MEBIBYTE)), "content-type": "text/plain"},
        )
    assert answer.status_code == 413
    assert answer.json() == too_large()
    assert (upload.pulled, checked) == (0, [])


async def test_a_chunked_body_is_counted_and_refused_once_past_the_limit() -> None:
    upload = Upload()
    async with limited_app() as (client, checked):
        answer = await client.post("/admin/things", content=upload)
    assert answer.status_code == 413
    assert answer.json() == too_large()
    assert upload.pulled == 1
    assert checked == []


async def test_bodies_within_the_limit_pass() -> None:
    async with limited_app() as (client, checked):
        assert (await client.post("/echo", json={"a": "b" * 1000})).json() == {"a": "b" * 1000}
        assert (await client.post("/admin/things", json={})).status_code == 401
    assert checked == ["/admin/things"]
