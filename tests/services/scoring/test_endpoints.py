"""/api/scoring/ over HTTP: an account's score and history, the portfolio and its figures,
metric-definition versions, errors naming the field, and the admin token."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from services.scoring.accounts.insights import insights_router
from services.scoring.catalog.service import REFERENCE_METRICS
from services.scoring.endpoints import scoring_dependencies, scoring_router
from services.scoring.settings import ScoringSettings
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.contracts import EventType
from shared.db import create_engine, create_session_factory
from shared.observability.http import create_http_app
from shared.runtime import Resources
from shared.tenancy.service import create_workspace
from tests.services.scoring.support import T0, Harness, run_until_idle

TOKEN = "s3cret-admin-token-of-the-tests"


@dataclass
class Api:
    client: httpx.AsyncClient
    name: str
    harness: Harness

    @property
    def base(self) -> str:
        return f"/api/scoring/workspaces/{self.name}"

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(self.base + path, params=params)


async def open_api(database_url: str) -> AsyncIterator[Api]:
    """The API on a new workspace, its requests sent with the admin token set as TOKEN."""
    engine = create_engine(database_url)
    clock = FrozenClock(T0)
    bus = InMemoryBus()
    resources = Resources(bus, engine, create_session_factory(engine), clock, CollectorRegistry())
    app = create_http_app("test", "test", resources)
    settings = ScoringSettings(admin_token=SecretStr(TOKEN))
    app.include_router(scoring_router(settings, resources))
    app.include_router(insights_router(dependencies=scoring_dependencies(settings, resources)))
    name = f"ws-{uuid.uuid4().hex[:12]}"
    async with resources.sessions() as session:
        issued = await create_workspace(session, name, clock=clock)
        await session.commit()
    harness = Harness(
        bus, resources.sessions, clock, issued.workspace_id, f"scoring-{uuid.uuid4().hex[:8]}"
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://scoring", headers=headers
    ) as client:
        yield Api(client, name, harness)
    await engine.dispose()


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async for opened in open_api(database_url):
        yield opened


async def score(api: Api) -> None:
    """Two accounts: acme, overdue on its invoice, with a contract renewed a year after
    signing; globex, whose contract was cancelled."""
    h = api.harness
    year_ago = (h.clock.now() - timedelta(days=400)).date()
    ended = (h.clock.now() - timedelta(days=35)).date()
    records = [
        h.event("g1", type=EventType.GROUP, user="boss", context={"traits": {"role": "admin"}}),
        *(h.event(f"l{i}", event="Logged In", user="boss") for i in range(3)),
        h.event("o1", event="Order Completed", properties={"amount": 50}),
        h.crm("inv", "invoice.overdue", {"invoice_id": "i1", "amount": "10", "currency": "EUR"}),
    ]
    for account, outcome in (("acme", "renewed"), ("globex", "cancelled")):
        contract = {
            "account_id": account,
            "contract_id": f"c-{account}",
            "value": "12000",
            "currency": "EUR",
            "starts_on": year_ago.isoformat(),
            "ends_on": ended.isoformat(),
            "acquisition_cost": "6000",
        }
        records.append(h.crm(f"c-{account}", "contract.signed", contract, account=account))
        if outcome == "renewed":
            until = (ended + timedelta(days=365)).isoformat()
            data = {"account_id": account, "subscription_id": "s", "renewed_until": until}
            records.append(h.crm(f"r-{account}", "subscription.renewed", data, account=account))
        else:
            data = {"account_id": account, "subscription_id": "s", "effective_on": str(ended)}
            records.append(h.crm(f"x-{account}", "subscription.cancelled", data, account=account))
    await h.publish(records)
    worker, consumer = h.worker(), await h.subscribe()
    await run_until_idle(worker, consumer)
    await consumer.close()


async def test_an_accounts_score_with_its_explanation_signals_and_north_star(api: Api) -> None:
    await score(api)
    response = await api.get("/accounts/acme")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["risk_level"] == "high"
    assert [s["kind"] for s in body["signals"]] == ["invoice_overdue"]
    assert body["signals"][0]["sentence"] == "An invoice is overdue."
    assert body["explanation"][0].startswith(f"Health {body['health']:.1f} of 100")
    assert {c["component"] for c in body["components"]} >= {"billing_state", "relationship"}
    assert body["north_star"] == {
        "metric": "orders",
        "name": "Orders completed",
        "window": "P28D",
        "value": 1.0,
    }
    assert body["facts"]["crm.invoice_status"] == "overdue"
    assert body["metrics"]["logins_7d"] == 3
    assert body["metrics"]["orders_28d"] == 1
    assert body["metrics"]["open_tickets"] is None


async def test_the_history_is_paged_newest_first(api: Api) -> None:
    await score(api)
    first = (await api.get("/accounts/acme/history", limit=1)).json()
    assert [i["kind"] for i in first["items"]] == ["risk_raised"]
    assert first["north_star"]["metric"] == "orders"
    second = (await api.get("/accounts/acme/history", limit=1, cursor=first["next_cursor"])).json()
    assert [i["kind"] for i in second["items"]] == ["score_changed"]
    assert second["next_cursor"] is None


async def test_the_portfolio_and_its_figures(api: Api) -> None:
    await score(api)
    portfolio = (await api.get("/portfolio")).json()
    assert portfolio["accounts"] == 2
    assert {g["key"]: g["accounts"] for g in portfolio["by_risk_level"]} == {"high": 1, "low": 1}
    assert portfolio["north_star"]["value"] == 1.0
    now = api.harness.clock.now()
    response = await api.get(
        "/portfolio/figures",
        start=(now - timedelta(days=90)).isoformat(),
        end=now.isoformat(),
    )
    assert response.status_code == 200, response.text
    figures = {f["name"]: f for f in response.json()["figures"]}
    assert response.json()["accounts_with_contract"] == 2
    assert figures["renewal_rate"]["value"] == 0.5
    assert figures["renewal_rate"]["inputs"] == {
        "start": int((now - timedelta(days=90)).timestamp()),
        "end": int(now.timestamp()),
        "due": 2,
        "renewed": 1,
    }
    assert figures["ltv_to_cac"]["reason"] == (
        "no account won in the period states an acquisition cost"
    )
    backwards = await api.get(
        "/portfolio/figures", start=now.isoformat(), end=(now - timedelta(days=1)).isoformat()
    )
    assert backwards.status_code == 422
    assert backwards.json()["detail"]["message"] == "a period ends after it starts"


async def test_unknown_accounts_and_workspaces_are_404_naming_the_field(api: Api) -> None:
    missing = await api.get("/accounts/nobody")
    assert missing.status_code == 404
    assert missing.json()["detail"]["field"] == "account_id"
    nowhere = await api.client.get("/api/scoring/workspaces/nowhere/portfolio")
    assert nowhere.status_code == 404
    assert nowhere.json()["detail"]["field"] == "workspace"


async def test_metric_definitions_are_published_as_versions(api: Api) -> None:
    source = REFERENCE_METRICS.read_text()
    body = {"source": source, "source_name": "metrics.yaml"}
    created = await api.client.post(api.base + "/definitions", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    assert created.json()["north_star"] == "orders"
    again = await api.client.post(api.base + "/definitions", json=body)
    assert again.status_code == 409
    changed = source.replace("name: Orders completed", "name: Orders done")
    second = await api.client.post(
        api.base + "/definitions", json={"source": changed, "source_name": "metrics.yaml"}
    )
    assert second.json()["version"] == 2
    page = (await api.get("/definitions", limit=1)).json()
    assert [(v["version"], v["current"]) for v in page["items"]] == [(2, True)]
    assert page["north_star"]["name"] == "Orders done"
    rest = (await api.get("/definitions", cursor=page["next_cursor"])).json()
    assert [(v["version"], v["current"]) for v in rest["items"]] == [(1, False)]
    shown = (await api.get("/definitions/1")).json()
    assert shown["source"] == source
    assert next(m for m in shown["metrics"] if m["id"] == "orders")["north_star"]
    assert (await api.get("/definitions/9")).status_code == 404
    too_large = await api.get("/definitions/99999999999")
    assert too_large.status_code == 422
    assert (await api.get("/definitions", cursor=2**40)).status_code == 422


async def test_an_invalid_file_is_refused_with_its_line_and_field(api: Api) -> None:
    text = "metrics:\n  - id: orders\n    name: Orders\n    kind: count\n    windows: [P7D]\n"
    body = {"source": text, "source_name": "bad.yaml"}
    for path in ("/definitions", "/definitions/validate"):
        response = await api.client.post(api.base + path, json=body)
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert detail["field"] == "metrics[0].event"
        assert detail["problems"][0]["line"] == 2
        assert detail["problems"][0]["file"] == "bad.yaml"


async def test_the_admin_token_guards_the_api(database_url: str) -> None:
    async for api in open_api(database_url):
        assert (await api.get("/portfolio")).status_code == 200
        refused = await api.client.get(
            api.base + "/portfolio", headers={"Authorization": "Bearer wrong"}
        )
        assert refused.status_code == 401
        assert refused.json()["detail"]["field"] == "Authorization"
