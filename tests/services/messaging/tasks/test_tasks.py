"""Tasks: created once, escalated on the clock, closed through the API, and pushed to the
CRM as signed webhooks (verified with the standardwebhooks library)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook

from services.messaging.channels.http import HttpChannel, http_client
from services.messaging.channels.webhooks import WebhookFormat
from services.messaging.deliveries.models import DeliveryRow
from services.messaging.tasks import service
from services.messaging.tasks.planned import PlannedTask
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from tests.services.messaging.api import delivery_api
from tests.services.messaging.channels.support import OPEN_GUARD as OPEN
from tests.services.messaging.deliveries.support import dispatcher
from tests.services.messaging.http_sink import running_sink

T0 = datetime.now(UTC).replace(microsecond=0)
"""Real time: the receiver checks webhook timestamps against it."""
CRM = "http://crm.example.com/hooks/tasks"
SECRET = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


def planned_task(**fields: Any) -> PlannedTask:
    values: dict[str, Any] = {
        "workspace_id": "ws_test",
        "account_id": "acme",
        "trigger_id": "t-9",
        "playbook_id": "renewal",
        "playbook_version": 2,
        "step_id": "renewal/visit",
        "owner_contact_id": "csm-1",
        "title": "Visit Acme before renewal",
        "description": "Decision maker silent for 30 days.",
        "priority": 30,
        "due_at": T0 + timedelta(days=3),
        "escalate_at": T0 + timedelta(days=4),
        "escalate_to": "cs_lead",
        "planned_at": T0,
        **fields,
    }
    return PlannedTask(**values)


async def pushes(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = await session.scalars(select(DeliveryRow).order_by(DeliveryRow.planned_at))
        return [(r.target["event_type"], r.step_id) for r in rows]


async def test_a_task_is_created_once_and_its_creation_pushed(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with own_sessions() as session:
        first = await service.create_task(session, planned_task(), crm_url=CRM)
        again = await service.create_task(session, planned_task(title="other"), crm_url=CRM)
        await session.commit()
        task = await service.get_task(session, "ws_test", first.task_id)
    assert first.created
    assert not again.created
    assert (task.status, task.title, task.owner_contact_id) == (
        "open",
        "Visit Acme before renewal",
        "csm-1",
    )
    assert await pushes(own_sessions) == [("task.created", f"task:{first.task_id}:1")]


async def test_without_a_crm_url_nothing_is_pushed(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with own_sessions() as session:
        await service.create_task(session, planned_task(), crm_url=None)
        await session.commit()
    assert await pushes(own_sessions) == []


async def test_an_open_task_is_escalated_when_its_time_comes(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FrozenClock(T0)
    async with own_sessions() as session:
        open_task = await service.create_task(session, planned_task(), crm_url=CRM)
        done = await service.create_task(
            session, planned_task(step_id="renewal/call"), crm_url=None
        )
        await service.update_task(
            session, "ws_test", done.task_id, status="done", note=None, now=T0, crm_url=None
        )
        await session.commit()

    for at, expected in (
        (timedelta(days=4) - timedelta(seconds=1), []),
        (timedelta(days=4), [open_task.task_id]),
    ):
        clock.set(T0 + at)
        async with own_sessions() as session:
            assert await service.escalate_due(session, now=clock.now(), crm_url=CRM) == expected
            await session.commit()
    async with own_sessions() as session:
        task = await service.get_task(session, "ws_test", open_task.task_id)
        assert (task.status, task.escalated_at, task.version) == ("escalated", clock.now(), 2)
        assert await service.escalate_due(session, now=clock.now(), crm_url=CRM) == []
    assert await pushes(own_sessions) == [
        ("task.created", f"task:{open_task.task_id}:1"),
        ("task.escalated", f"task:{open_task.task_id}:2"),
    ]


async def test_pushes_reach_the_crm_signed(own_sessions: async_sessionmaker[AsyncSession]) -> None:
    clock = FrozenClock(T0)
    async with running_sink() as sink, http_client(2.0, OPEN) as client:
        async with own_sessions() as session:
            created = await service.create_task(
                session, planned_task(), crm_url=f"{sink.url}/crm/tasks"
            )
            await session.commit()
        channel = HttpChannel(WebhookFormat(), client=client, guard=OPEN, clock=clock)
        worker = dispatcher(own_sessions, InMemoryBus(), clock, {"webhook": channel})
        assert await worker.step() == 1

    (request,) = sink.received
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["type"] == "task.created"
    assert payload["data"]["task_id"] == created.task_id
    assert payload["data"]["escalate_to"] == "cs_lead"
    assert payload["data"]["due_at"] == (T0 + timedelta(days=3)).isoformat()


async def test_the_api_lists_and_closes_tasks(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FrozenClock(T0)
    async with delivery_api(own_sessions, clock, crm_task_webhook_url=CRM) as api:
        async with own_sessions() as session:
            ids = [
                (
                    await service.create_task(
                        session,
                        planned_task(
                            workspace_id=api.workspace_id,
                            step_id=f"renewal/s{n}",
                            planned_at=T0 + timedelta(minutes=n),
                        ),
                        crm_url=None,
                    )
                ).task_id
                for n in range(3)
            ]
            await session.commit()
        base = f"/api/messaging/workspaces/{api.workspace}/tasks"

        page = (await api.client.get(base, params={"limit": 2}, headers=api.admin)).json()
        assert [t["task_id"] for t in page["items"]] == [ids[2], ids[1]]
        rest = await api.client.get(
            base, params={"limit": 2, "cursor": page["next_cursor"]}, headers=api.admin
        )
        assert [t["task_id"] for t in rest.json()["items"]] == [ids[0]]

        closed = await api.client.patch(
            f"{base}/{ids[0]}", json={"status": "done", "note": "Visited."}, headers=api.admin
        )
        assert closed.status_code == 200, closed.text
        assert (closed.json()["status"], closed.json()["note"]) == ("done", "Visited.")
        assert await pushes(own_sessions) == [("task.updated", f"task:{ids[0]}:2")]

        again = await api.client.patch(
            f"{base}/{ids[0]}", json={"status": "cancelled"}, headers=api.admin
        )
        assert again.status_code == 409
        assert again.json()["detail"]["field"] == "status"

        bad = await api.client.patch(f"{base}/{ids[1]}", json={"status": "open"}, headers=api.admin)
        assert bad.status_code == 422
        open_only = await api.client.get(base, params={"status": "open"}, headers=api.admin)
        assert {t["task_id"] for t in open_only.json()["items"]} == {ids[1], ids[2]}
        missing = await api.client.get(f"{base}/tsk_nope", headers=api.admin)
        assert missing.status_code == 404


async def test_an_account_has_at_most_one_open_task_per_kind(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Three risk triggers in a row create one "Churn risk" task; once it is done the next
    trigger creates a new one, and another kind (step) is not held back."""
    async with own_sessions() as session:
        first = await service.create_task(session, planned_task(trigger_id="t-1"), crm_url=CRM)
        second = await service.create_task(session, planned_task(trigger_id="t-2"), crm_url=CRM)
        other_account = await service.create_task(
            session, planned_task(trigger_id="t-3", account_id="bolt"), crm_url=None
        )
        other_kind = await service.create_task(
            session, planned_task(trigger_id="t-3", step_id="renewal/call"), crm_url=None
        )
        await session.commit()
    assert first.created
    assert (second.created, second.task_id) == (False, first.task_id)
    assert other_account.created
    assert other_kind.created
    async with own_sessions() as session:
        await service.update_task(
            session, "ws_test", first.task_id, status="done", note=None, now=T0, crm_url=None
        )
        after = await service.create_task(session, planned_task(trigger_id="t-4"), crm_url=None)
        await session.commit()
    assert after.created
    assert after.task_id != first.task_id
    assert await pushes(own_sessions) == [("task.created", f"task:{first.task_id}:1")]


async def test_a_task_planned_before_its_account_had_an_owner_goes_to_the_owner_learned(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    later = T0 + timedelta(hours=1)
    async with own_sessions() as session:
        ownerless = await service.create_task(
            session, planned_task(owner_contact_id=None), crm_url=CRM
        )
        owned = await service.create_task(
            session, planned_task(trigger_id="t-10", step_id="renewal/call"), crm_url=CRM
        )
        elsewhere = await service.create_task(
            session,
            planned_task(account_id="globex", trigger_id="t-11", owner_contact_id=None),
            crm_url=CRM,
        )
        assigned = await service.assign_owners(
            session, {("ws_test", "acme"): "csm-2"}, now=later, crm_url=CRM
        )
        again = await service.assign_owners(
            session, {("ws_test", "acme"): "csm-3"}, now=later, crm_url=CRM
        )
        await session.commit()
        tasks = {
            t: await service.get_task(session, "ws_test", t)
            for t in (ownerless.task_id, owned.task_id, elsewhere.task_id)
        }
    assert assigned == [ownerless.task_id]
    assert again == []  # it has its owner now: a later owner does not take it over here
    task = tasks[ownerless.task_id]
    assert (task.owner_contact_id, task.version, task.updated_at) == ("csm-2", 2, later)
    assert tasks[owned.task_id].owner_contact_id == "csm-1"
    assert tasks[elsewhere.task_id].owner_contact_id is None
    assert ("task.updated", f"task:{ownerless.task_id}:2") in await pushes(own_sessions)
