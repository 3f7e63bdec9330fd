"""The accounts admin API: one account's state, its timeline (paged), the funnel of a path,
and queued manual moves; errors name the field; the admin token guards it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import select

from services.node_engine.accounts.encoding import encode_state
from services.node_engine.accounts.repository import append_transitions, save_states
from services.node_engine.app import mount_engine
from services.node_engine.core.state import AccountState, Observation
from services.node_engine.core.transition import transition
from services.node_engine.paths.compiled import GrowthPath, compile_path
from services.node_engine.paths.files import GrowthPathFile
from services.node_engine.settings import EngineSettings
from services.node_engine.timers.models import TimerRow
from services.node_engine.timers.repository import schedule
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.db import create_engine, create_session_factory
from shared.definitions import load_definition
from shared.observability.http import create_http_app
from shared.runtime import Resources
from shared.tenancy.admin_tokens import create_token
from shared.tenancy.service import create_workspace

REFERENCE = Path(__file__).parents[4] / "services" / "node_engine" / "paths" / "reference"
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
TOKEN = "s3cret-admin-token-of-the-tests"


@dataclass
class Api:
    client: httpx.AsyncClient
    resources: Resources
    workspace: str
    workspace_id: str
    path: GrowthPath

    @property
    def base(self) -> str:
        return f"/api/engine/workspaces/{self.workspace}"

    async def walk(self, account: str, events: list[str]) -> AccountState:
        """Drive the pure core through ``events`` (a group call first) and store the result
        as the engine would."""
        clock = self.resources.clock
        assert isinstance(clock, FrozenClock)
        state: AccountState | None = None
        async with self.resources.sessions() as session:
            for index, name in enumerate(["(group)", *events]):
                clock.advance(timedelta(hours=5))
                event = Observation(
                    f"{account}-{index}",
                    self.workspace_id,
                    account,
                    "group" if index == 0 else "track",
                    None if index == 0 else name,
                    "u1",
                    frozenset(),
                    {},
                    {},
                    "segment",
                    int(clock.now().timestamp()),
                )
                decision = transition(state, event, path=self.path, now=clock.now())
                assert decision.state is not None
                state = decision.state
                await append_transitions(session, [(state, t, 0) for t in decision.transitions])
                await schedule(
                    session, [(self.workspace_id, account, 3, t) for t in decision.timers]
                )
            assert state is not None
            await save_states(session, [(state, encode_state(state))], now=clock.now())
            await session.commit()
        return state


async def open_api(database_url: str) -> AsyncIterator[Api]:
    """The API on a new workspace, its requests sent with the admin token set as TOKEN."""
    engine = create_engine(database_url)
    resources = Resources(
        InMemoryBus(), engine, create_session_factory(engine), FrozenClock(T0), CollectorRegistry()
    )
    app = create_http_app("test", "test", resources)
    mount_engine(app, EngineSettings(admin_token=SecretStr(TOKEN)), resources)
    name = f"ws-{uuid.uuid4().hex[:10]}"
    async with resources.sessions() as session:
        issued = await create_workspace(session, name, clock=resources.clock)
        await session.commit()
    path = compile_path(
        load_definition(REFERENCE / "platform-merchant.yaml", GrowthPathFile), version=1
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://engine", headers=headers
    ) as client:
        yield Api(client, resources, name, issued.workspace_id, path)
    await engine.dispose()


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async for opened in open_api(database_url):
        yield opened


async def test_an_account_shows_its_place_nodes_and_facts(api: Api) -> None:
    await api.walk("acme", ["Merchant Approved", "Profile Completed"])
    answer = await api.client.get(f"{api.base}/accounts/acme")
    assert answer.status_code == 200
    (on_path,) = answer.json()["paths"]
    assert (on_path["path_id"], on_path["stage"], on_path["node"]) == (
        "platform-merchant",
        "account_setup",
        "payout_account",
    )
    statuses = {n["node"]: n["status"] for n in on_path["nodes"]}
    assert statuses == {
        "application_approved": "completed",
        "complete_profile": "completed",
        "payout_account": "active",
    }

    missing = await api.client.get(f"{api.base}/accounts/nobody")
    assert missing.status_code == 404
    assert missing.json()["detail"]["field"] == "account_id"
    unknown = await api.client.get("/api/engine/workspaces/no-such-workspace/accounts/acme")
    assert unknown.status_code == 404
    assert unknown.json()["detail"]["field"] == "workspace"


async def test_the_timeline_is_paged_in_order(api: Api) -> None:
    await api.walk("acme", ["Merchant Approved", "Profile Completed"])
    first = (await api.client.get(f"{api.base}/accounts/acme/timeline", params={"limit": 4})).json()
    assert [i["kind"] for i in first["items"]] == [
        "enrolled",
        "stage_entered",
        "node_entered",
        "node_completed",
    ]
    second = (
        await api.client.get(
            f"{api.base}/accounts/acme/timeline",
            params={"limit": 4, "cursor": first["next_cursor"]},
        )
    ).json()
    assert [i["kind"] for i in second["items"]] == [
        "stage_entered",
        "node_entered",
        "node_completed",
        "node_entered",
    ]
    assert second["items"][0]["cause_id"] == "acme-1"
    assert second["next_cursor"] is None
    too_many = await api.client.get(f"{api.base}/accounts/acme/timeline", params={"limit": 501})
    assert too_many.status_code == 422


async def test_the_funnel_counts_accounts_entries_completions_and_time_in_node(api: Api) -> None:
    await api.walk("a1", ["Merchant Approved", "Profile Completed"])
    await api.walk("a2", ["Merchant Approved"])
    await api.walk("a3", [])
    funnel = (await api.client.get(f"{api.base}/paths/platform-merchant/funnel")).json()
    assert funnel["accounts"] == 3
    steps = {(s["stage"], s["node"]): s for s in funnel["steps"]}
    approved = steps[("settle_in", "application_approved")]
    assert (approved["accounts_now"], approved["entered"], approved["completed"]) == (1, 3, 2)
    assert approved["conversion"] == pytest.approx(2 / 3, abs=1e-4)
    assert approved["median_days_in_node"] == pytest.approx(5 / 24, abs=0.01)
    profile = steps[("account_setup", "complete_profile")]
    assert (profile["accounts_now"], profile["entered"], profile["completed"]) == (1, 2, 1)
    assert steps[("account_setup", None)]["entered"] == 2


async def test_a_move_is_queued_for_the_engine_and_refused_for_an_account_not_on_the_path(
    api: Api,
) -> None:
    await api.walk("acme", [])
    body = {
        "path_id": "platform-merchant",
        "target": "nurturing",
        "actor": "ops@example.com",
        "note": "import",
    }
    answer = await api.client.post(f"{api.base}/accounts/acme/moves", json=body)
    assert answer.status_code == 202
    move_id = answer.json()["move_id"]
    async with api.resources.sessions() as session:
        row = await session.scalar(select(TimerRow).where(TimerRow.timer_id == move_id))
    assert row is not None
    assert (row.kind, row.node, row.partition, row.detail) == (
        "move",
        "nurturing",
        3,
        {"actor": "ops@example.com", "note": "import"},
    )

    elsewhere = await api.client.post(f"{api.base}/accounts/nobody/moves", json=body)
    assert elsewhere.status_code == 404
    assert elsewhere.json()["detail"]["field"] == "path_id"
    extra = await api.client.post(f"{api.base}/accounts/acme/moves", json={**body, "force": True})
    assert extra.status_code == 422


async def test_a_move_records_the_admin_tokens_name_never_the_token(api: Api) -> None:
    await api.walk("acme", [])
    async with api.resources.sessions() as session:
        named, unnamed = [
            await create_token(
                session, workspace=api.workspace, label=label, clock=api.resources.clock
            )
            for label in ("Ana (ops)", "")
        ]
        await session.commit()
    body = {"path_id": "platform-merchant", "target": "nurturing", "note": "called"}

    async def recorded(token: str, **extra: str) -> dict[str, Any]:
        answer = await api.client.post(
            f"{api.base}/accounts/acme/moves",
            json={**body, **extra},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 202, answer.text
        async with api.resources.sessions() as session:
            row = await session.scalar(
                select(TimerRow).where(TimerRow.timer_id == answer.json()["move_id"])
            )
        assert row is not None
        assert row.detail is not None
        return dict(row.detail)

    assert await recorded(named.token) == {"actor": "Ana (ops)", "note": "called"}
    assert await recorded(named.token, actor="Ana (ops)") == {
        "actor": "Ana (ops)",
        "note": "called",
    }
    assert (await recorded(unnamed.token))["actor"] == unnamed.token_id
    assert (await recorded(TOKEN))["actor"] == "operator"
    claimed = await api.client.post(
        f"{api.base}/accounts/acme/moves",
        json={**body, "actor": "someone else"},
        headers={"Authorization": f"Bearer {named.token}"},
    )
    assert claimed.status_code == 422
    assert claimed.json()["detail"]["field"] == "actor"
    assert "Ana (ops)" in claimed.json()["detail"]["message"]


async def test_the_admin_token_guards_the_accounts_api(database_url: str) -> None:
    async for api in open_api(database_url):
        await api.walk("acme", [])
        assert (await api.client.get(f"{api.base}/accounts/acme")).status_code == 200
        anonymous = await api.client.get(f"{api.base}/accounts/acme", headers={"Authorization": ""})
        assert anonymous.status_code == 401
        wrong = await api.client.get(
            f"{api.base}/accounts/acme", headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401


@pytest.mark.parametrize("cursor", [2**63, 2**70, -1])
async def test_a_timeline_cursor_past_its_column_is_422(api: Api, cursor: int) -> None:
    await api.walk("acme", ["Merchant Approved"])
    answer = await api.client.get(f"{api.base}/accounts/acme/timeline", params={"cursor": cursor})
    assert answer.status_code == 422, answer.text
