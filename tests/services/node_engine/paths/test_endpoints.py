"""The paths admin API over HTTP: publish, list, show, pause, validate, auth and errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.node_engine.paths.endpoints import paths_router
from services.node_engine.settings import EngineSettings
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.db import create_engine, create_session_factory
from shared.observability.http import create_http_app
from shared.runtime import Resources
from shared.tenancy.admin_tokens import create_token
from shared.tenancy.service import create_workspace

REFERENCE = Path(__file__).parents[4] / "services" / "node_engine" / "paths" / "reference"
MERCHANT = (REFERENCE / "platform-merchant.yaml").read_text()
SAAS = (REFERENCE / "saas-account.yaml").read_text()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOKEN = "s3cret-admin-token-of-the-tests"
CLOCK = FrozenClock(T0)


@dataclass
class Api:
    client: httpx.AsyncClient
    workspace: str
    sessions: async_sessionmaker[AsyncSession]

    @property
    def base(self) -> str:
        return f"/api/engine/workspaces/{self.workspace}/paths"

    async def publish(self, source: str = MERCHANT, **fields: Any) -> httpx.Response:
        body = {"source": source, "source_name": "merchant.yaml", **fields}
        return await self.client.post(self.base, json=body)


async def open_api(database_url: str) -> AsyncIterator[Api]:
    """The API on a new workspace, its requests sent with the admin token set as TOKEN."""
    engine = create_engine(database_url)
    clock = FrozenClock(T0)
    resources = Resources(
        InMemoryBus(), engine, create_session_factory(engine), clock, CollectorRegistry()
    )
    app = create_http_app("test", "test", resources)
    settings = EngineSettings(admin_token=SecretStr(TOKEN))
    app.include_router(paths_router(settings, resources))
    name = f"ws-{uuid.uuid4().hex[:12]}"
    async with resources.sessions() as session:
        await create_workspace(session, name, clock=clock)
        await session.commit()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://engine", headers=headers
    ) as client:
        yield Api(client, name, resources.sessions)
    await engine.dispose()


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async for opened in open_api(database_url):
        yield opened


async def test_publish_then_read_the_path_and_its_versions(api: Api) -> None:
    created = await api.publish()
    assert created.status_code == 201, created.text
    assert created.json() | {"digest": "-"} == {
        "path_id": "platform-merchant",
        "version": 1,
        "name": "Platform merchant growth path",
        "source_name": "merchant.yaml",
        "digest": "-",
        "migration": "pin",
        "node_map": {},
        "published_at": "2026-03-02T09:00:00Z",
        "published_by": "operator",
    }
    v2 = MERCHANT.replace("id: first_order", "id: first_sale")
    second = await api.publish(v2, migration="migrate", node_map={"first_order": "first_sale"})
    assert second.json()["version"] == 2

    path = (await api.client.get(f"{api.base}/platform-merchant")).json()
    assert (path["current_version"], path["paused"]) == (2, False)
    assert [(v["version"], v["migration"]) for v in path["versions"]] == [
        (1, "pin"),
        (2, "migrate"),
    ]

    version = (await api.client.get(f"{api.base}/platform-merchant/versions/1")).json()
    assert version["current"] is False
    assert version["source"] == MERCHANT
    summary = version["summary"]
    assert [s["id"] for s in summary["stages"]] == [
        "settle_in",
        "account_setup",
        "nurturing",
        "established",
    ]
    first_listing = summary["stages"][2]["nodes"][0]
    assert first_listing["due"] == "P3D"
    assert first_listing["escalations"][0] | {"reason": "-"} == {
        "level": 1,
        "at": "P7D",
        "notify": ["account_owner"],
        "action": "task",
        "reason": "-",
    }
    assert [level["id"] for level in summary["tiers"]["levels"]] == ["L1", "L2", "L3", "L4", "L5"]
    assert summary["tiers"]["levels"][1]["exit_below"] == 8000
    windowed = [a for a in summary["aggregates"] if a["within"] == "P28D"]
    assert windowed == [
        {
            "key": "sum|Order Completed|amount|||2419200",
            "kind": "sum",
            "event": "Order Completed",
            "property": "amount",
            "where": None,
            "role": None,
            "within": "P28D",
        }
    ]


async def test_a_version_records_the_admin_token_that_published_it(api: Api) -> None:
    async with api.sessions() as session:
        issued = await create_token(
            session, workspace=api.workspace, label="release-bot", clock=CLOCK
        )
        await session.commit()
    assert (await api.publish()).json()["published_by"] == "operator"  # the setting's token
    second = await api.client.post(
        api.base,
        json={"source": MERCHANT.replace("id: first_order", "id: first_sale")},
        headers={"Authorization": f"Bearer {issued.token}"},
    )
    assert second.json()["published_by"] == "release-bot"
    path = (await api.client.get(f"{api.base}/platform-merchant")).json()
    assert [v["published_by"] for v in path["versions"]] == ["operator", "release-bot"]


async def test_an_invalid_file_is_422_with_each_problem_located(api: Api) -> None:
    broken = MERCHANT.replace("due: P2D", "due: two days").replace(
        'complete_when: happened("Profile Completed")', 'complete_when: happened("Profile'
    )
    response = await api.publish(broken)
    assert response.status_code == 422
    detail = response.json()["detail"]
    # the bad duration does not hide the meaning (expressions, gotos): both in one answer
    assert detail["field"] == "stages[0].nodes[0].due"
    assert detail["message"].startswith("the growth path has 2 problems, the first: merchant.yaml:")
    due, condition = detail["problems"]
    line = MERCHANT[: MERCHANT.index("due: P2D")].count("\n") + 1
    assert due | {"message": "-"} == {
        "file": "merchant.yaml",
        "line": line,
        "column": 14,
        "field": "stages[0].nodes[0].due",
        "message": "-",
    }
    at = broken.index('happened("Profile') + len("happened(")  # the unterminated text
    assert (condition["line"], condition["column"]) == (
        broken[:at].count("\n") + 1,
        at - broken.rindex("\n", 0, at),
    )
    assert condition["message"].startswith("syntax error: unterminated string")
    not_yaml = await api.publish("id: [unclosed")
    assert not_yaml.status_code == 422
    assert not_yaml.json()["detail"]["problems"][0]["line"] == 1


async def test_identical_content_is_409_and_a_bad_node_map_422(api: Api) -> None:
    await api.publish()
    again = await api.publish("# same data, other layout\n" + MERCHANT)
    assert again.status_code == 409
    assert again.json()["detail"] == {
        "field": "source",
        "message": "platform-merchant v1 has the same content: nothing to publish",
        "problems": [],
    }
    v2 = MERCHANT.replace("id: first_order", "id: first_sale")
    bad_map = await api.publish(v2, migration="migrate", node_map={"first_order": "nowhere"})
    assert bad_map.status_code == 422
    assert bad_map.json()["detail"]["field"] == "node_map.first_order"
    bad_policy = await api.publish(v2, migration="teleport")
    assert bad_policy.status_code == 422
    assert bad_policy.json()["detail"][0]["loc"] == ["body", "migration"]


async def test_paths_are_listed_a_page_at_a_time(api: Api) -> None:
    for name in ("c", "a", "b"):
        await api.publish(MERCHANT.replace("id: platform-merchant", f"id: shop-{name}"))
    await api.publish(SAAS)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get(api.base, params=params)).json()
        seen += [item["path_id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["saas-account", "shop-a", "shop-b", "shop-c"]
    assert pages == 2
    too_many = await api.client.get(api.base, params={"limit": 1000})
    assert too_many.status_code == 422


async def test_pause_and_resume(api: Api) -> None:
    await api.publish()
    paused = await api.client.post(f"{api.base}/platform-merchant/pause")
    assert paused.status_code == 200
    assert paused.json()["paused"] is True
    assert (await api.client.get(f"{api.base}/platform-merchant")).json()["paused"] is True
    resumed = await api.client.post(f"{api.base}/platform-merchant/resume")
    assert resumed.json()["paused"] is False


async def test_validate_checks_without_publishing(api: Api) -> None:
    valid = await api.client.post(f"{api.base}/validate", json={"source": SAAS})
    assert valid.status_code == 200
    assert valid.json()["summary"]["id"] == "saas-account"
    invalid = await api.client.post(
        f"{api.base}/validate", json={"source": SAAS.replace("goto: lead", "goto: nowhere")}
    )
    assert invalid.status_code == 422
    assert invalid.json()["detail"]["problems"][0]["field"] == "stages[1].nodes[0].next[0].goto"
    assert (await api.client.get(api.base)).json()["items"] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/engine/workspaces/nope/paths"),
        ("GET", "/api/engine/workspaces/{ws}/paths/nope"),
        ("GET", "/api/engine/workspaces/{ws}/paths/platform-merchant/versions/9"),
        ("POST", "/api/engine/workspaces/{ws}/paths/nope/pause"),
    ],
)
async def test_unknown_names_are_404_naming_the_field(api: Api, method: str, path: str) -> None:
    await api.publish()
    response = await api.client.request(method, path.format(ws=api.workspace))
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert detail["field"] in ("workspace", "path_id")
    assert detail["message"]


async def test_with_an_admin_token_every_route_needs_it(api: Api) -> None:
    assert (await api.publish()).status_code == 201
    requests: list[Callable[[httpx.AsyncClient], Any]] = [
        lambda c: c.get(api.base),
        lambda c: c.get(f"{api.base}/platform-merchant"),
        lambda c: c.post(f"{api.base}/platform-merchant/pause"),
        lambda c: c.post(f"{api.base}/validate", json={"source": MERCHANT}),
    ]
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        async with httpx.AsyncClient(
            transport=api.client._transport, base_url="http://engine", headers=headers
        ) as anonymous:
            for request in requests:
                response = await request(anonymous)
                assert response.status_code == 401
                assert response.headers["WWW-Authenticate"] == "Bearer"
                assert response.json()["detail"]["field"] == "Authorization"
    assert (await api.client.get(api.base)).status_code == 200


async def test_the_routes_are_documented(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    routes = document["paths"]
    base = "/api/engine/workspaces/{workspace}/paths"
    assert set(routes[base]) == {"get", "post"}
    assert routes[base]["post"]["summary"] == "Publish a new version of a growth path"
    assert {"201", "409", "422"} <= set(routes[base]["post"]["responses"])
    for suffix in ("/validate", "/{path_id}", "/{path_id}/versions/{version}", "/{path_id}/pause"):
        assert base + suffix in routes
    assert "VersionDetailOut" in document["components"]["schemas"]


@pytest.mark.parametrize("version", [2**31, 2**70, -(2**31) - 1])
async def test_a_version_past_its_column_is_422(api: Api, version: int) -> None:
    await api.publish()
    answer = await api.client.get(f"{api.base}/platform-merchant/versions/{version}")
    assert answer.status_code == 422, answer.text
