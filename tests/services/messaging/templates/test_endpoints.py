"""The template preview: a template over a limit answers 422 naming the limit, and the
process goes on answering while one renders (rendering runs in a thread)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.messaging.templates.endpoints import templates_router
from services.messaging.templates.limits import TemplateLimits
from services.migrations import upgrade_to_head
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.db import create_engine, create_session_factory
from shared.observability.http import create_http_app
from shared.runtime import Resources
from shared.tenancy.service import create_workspace
from tests.services.messaging.support import T0

LOOPS = "{% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000) %}"


@dataclass
class Preview:
    client: httpx.AsyncClient
    url: str

    async def of(self, body: str) -> httpx.Response:
        return await self.client.post(self.url, json={"source": {"body": {"en": body}}})


async def open_preview(sqlite_url: str, limits: TemplateLimits) -> AsyncIterator[Preview]:
    engine = create_engine(sqlite_url)
    await upgrade_to_head(engine)
    clock = FrozenClock(T0)
    resources = Resources(
        InMemoryBus(), engine, create_session_factory(engine), clock, CollectorRegistry()
    )
    app = create_http_app("test", "test", resources)
    app.include_router(templates_router(resources, dependencies=[], limits=limits))
    async with resources.sessions() as session:
        await create_workspace(session, "acme", clock=clock)
        await session.commit()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://messaging"
    ) as client:
        yield Preview(client, "/api/messaging/workspaces/acme/templates/preview")
    await engine.dispose()


@pytest.fixture
async def preview(sqlite_url: str) -> AsyncIterator[Preview]:
    async for opened in open_preview(sqlite_url, TemplateLimits(time_seconds=0.3)):
        yield opened


@pytest.mark.parametrize(
    ("body", "limit"),
    [
        (LOOPS + "{% endfor %}{% endfor %}{% endfor %}", "time"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "range",
        ),
        ("{{ 10**100000 }}", "number"),
        ("{{ 'x' * 300000000 }}", "output"),
        ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "depth"),
        ("{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}", "output"),
    ],
)
async def test_a_preview_over_a_limit_answers_422_naming_it(
    preview: Preview, body: str, limit: str
) -> None:
    answer = await preview.of(body)
    assert answer.status_code == 422
    assert answer.json()["detail"]["field"] == "source"
    assert f"over the template {limit} limit" in answer.json()["detail"]["message"]
    assert (await preview.of("Hello {{ contact.name }}")).json()["body"] == "Hello Li Wei"


async def test_the_process_answers_while_a_preview_renders(sqlite_url: str) -> None:
    async for preview in open_preview(sqlite_url, TemplateLimits(time_seconds=3)):
        slow = LOOPS + "{% endfor %}{% endfor %}{% endfor %}{# a source of its own #}"
        rendering = asyncio.create_task(preview.of(slow))
        await asyncio.sleep(0.3)  # the preview is rendering by now
        assert (await preview.client.get("/healthz")).status_code == 200
        assert not rendering.done()  # answered while the preview was still rendering
        answer = await rendering
        assert answer.status_code == 422
        assert "over the template time limit" in answer.json()["detail"]["message"]
