"""``POST /api/simulation/workspaces/{w}/paths``: a draft growth path replayed on the
workspace's recent events, with its outreach, behind the admin token."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.admin_api import admin_dependencies
from services.messaging.playbooks.service import REFERENCE_PLAYBOOKS
from services.node_engine.paths.service import REFERENCE_PATHS
from services.simulation_router import MAX_EVENTS, simulation_router
from shared.bus import Bus, ConsumedRecord, OutgoingRecord
from shared.bus.durable import DurableBus
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.contracts import TOPICS
from shared.contracts.topics import Topic
from shared.errors import BusUnavailable, Refused
from shared.http_errors import answer_refused
from shared.tenancy.admin_tokens import create_token
from shared.tenancy.service import create_workspace
from shared.web.console_session import CSRF_HEADER, SESSION_COOKIE, csrf_token
from tests.processes import milepost, running
from tests.services.node_engine.simulation.sample_events import SAMPLE

CLOCK = FrozenClock(datetime(2026, 12, 1, tzinfo=UTC))
DRAFT = (REFERENCE_PATHS / "platform-merchant.yaml").read_text()
PLAYBOOK = (REFERENCE_PLAYBOOKS / "platform-merchant.yaml").read_text()


@dataclass(frozen=True, slots=True)
class Api:
    client: httpx.AsyncClient
    workspace: str
    other: str
    token: str

    async def simulate(
        self, body: dict[str, object], workspace: str | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/api/simulation/workspaces/{workspace or self.workspace}/paths",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        )


@pytest.fixture
async def api(sessions: async_sessionmaker[AsyncSession], bus: Bus) -> AsyncIterator[Api]:
    async for opened in open_api(sessions, bus):
        yield opened


async def open_api(sessions: async_sessionmaker[AsyncSession], bus: Bus) -> AsyncIterator[Api]:
    """The simulation route on ``bus`` with two new workspaces, the sample events in the
    first, and a token of the first."""
    names = [f"ws-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    async with sessions() as session:
        ids = [(await create_workspace(session, name, clock=CLOCK)).workspace_id for name in names]
        issued = await create_token(session, workspace=names[0], label="t", clock=CLOCK)
        await session.commit()
    await bus.publish(sample_records(ids[0]))
    app = FastAPI()
    app.add_exception_handler(Refused, answer_refused)
    app.state.sessions = sessions
    dependencies = admin_dependencies(sessions, SecretStr("x" * 32), variable="MILEPOST_TEST")
    app.include_router(simulation_router(bus, dependencies))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://milepost", timeout=60
    ) as client:
        yield Api(client, names[0], names[1], issued.token)


class _UnreadableBus(InMemoryBus):
    """Its tail read fails after the first batch (the broker went away meanwhile)."""

    async def read_tail(
        self, topic: str, *, per_partition: int
    ) -> AsyncIterator[list[ConsumedRecord]]:
        async for batch in super().read_tail(topic, per_partition=per_partition):
            yield batch
            raise BusUnavailable("no records for 10 s")


def sample_records(workspace_id: str) -> list[OutgoingRecord]:
    """The sample events, as the workspace's, keyed by event id."""
    records = []
    for line in SAMPLE.read_bytes().splitlines():
        data = orjson.loads(line)
        data["workspace_id"] = workspace_id
        records.append(OutgoingRecord(Topic.EVENTS, data["event_id"].encode(), orjson.dumps(data)))
    return records


async def test_a_draft_replays_the_recent_events_with_its_outreach(api: Api) -> None:
    answer = await api.simulate({"source": DRAFT, "source_name": "draft.yaml"})
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["path"]["id"] == "platform-merchant"
    assert report["events"]["replayed"] > 0
    assert report["accounts"]["enrolled"] > 0
    assert report["triggers"]["by_node"]
    assert "outreach" in report
    last = await api.simulate({"source": DRAFT, "events": 3, "outreach": False})
    assert last.json()["events"]["replayed"] == 3
    assert "outreach" not in last.json()


async def test_a_draft_playbook_plans_messages_per_role_with_their_decisions(api: Api) -> None:
    playbook = {"source": PLAYBOOK, "source_name": "outreach.yaml"}
    answer = await api.simulate({"source": DRAFT, "playbooks": [playbook]})
    assert answer.status_code == 200, answer.text
    messages = [m for item in answer.json()["outreach"] for m in item["messages"]]
    assert messages
    assert all(m["role"] and m["status"] for m in messages)
    broken = await api.simulate(
        {"source": DRAFT, "playbooks": [{"source": "steps: 7", "source_name": "bad.yaml"}]}
    )
    assert broken.status_code == 422
    assert broken.json()["detail"]["problems"][0]["line"] == 1


async def test_an_invalid_draft_answers_422_at_its_line(api: Api) -> None:
    broken = DRAFT.replace("stages:", "stages: 7\nnot_a_field:", 1)
    answer = await api.simulate({"source": broken, "source_name": "draft.yaml"})
    assert answer.status_code == 422
    problems = answer.json()["detail"]["problems"]
    stages = DRAFT.splitlines().index("stages:") + 1
    assert [p["line"] for p in problems] == [stages, stages + 1]
    too_many = await api.simulate({"source": DRAFT, "events": MAX_EVENTS + 1})
    assert too_many.status_code == 422
    assert "events" in too_many.text


async def test_an_unreadable_events_topic_answers_503_with_retry_after(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bus = _UnreadableBus()
    await bus.start()
    async for api in open_api(sessions, bus):
        answer = await api.simulate({"source": DRAFT})
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "5"
        assert answer.json()["detail"]["field"] == "events"
    await bus.close()


async def test_another_workspace_is_forbidden_and_no_token_unauthorized(api: Api) -> None:
    assert (await api.simulate({"source": DRAFT}, api.other)).status_code == 403
    anonymous = await api.client.post(
        f"/api/simulation/workspaces/{api.workspace}/paths", json={"source": DRAFT}
    )
    assert anonymous.status_code == 401


def test_the_messaging_service_serves_the_simulation_behind_its_admin_tokens(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = {"MILEPOST_DATA_DIR": str(data), "MILEPOST_DATABASE_URL": ""}
    milepost("workspace", "create", "ops", env=env)
    with sqlite3.connect(data / "milepost.db") as db:
        (workspace_id,) = db.execute("SELECT id FROM workspaces WHERE name = 'ops'").fetchone()
    asyncio.run(_publish_to_the_bus_file(data / "bus.db", sample_records(workspace_id)))
    created = milepost("admin-token", "create", "--workspace", "ops", "--label", "ana", env=env)
    token = created.stdout.strip().splitlines()[-1]
    with running("messaging", env, tmp_path / "messaging.log") as server:
        url = f"{server.url}/api/simulation/workspaces/ops/paths"
        body = {"source": DRAFT, "source_name": "draft.yaml"}
        assert httpx.post(url, json=body, timeout=30).status_code == 401
        bearer = httpx.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        assert bearer.status_code == 200, bearer.text
        assert bearer.json()["events"]["replayed"] > 0
        assert "outreach" in bearer.json()
        with httpx.Client(cookies={SESSION_COOKIE: token}, timeout=60) as console:
            assert console.post(url, json=body).status_code == 403  # no CSRF header
            signed = console.post(url, json=body, headers={CSRF_HEADER: csrf_token(token)})
        assert signed.status_code == 200, signed.text
        assert signed.json()["events"] == bearer.json()["events"]


async def _publish_to_the_bus_file(path: Path, records: list[OutgoingRecord]) -> None:
    bus = DurableBus(path)
    await bus.start()
    try:
        await bus.ensure_topics(TOPICS, replication_factor=1)
        await bus.publish(records)
    finally:
        await bus.close()
