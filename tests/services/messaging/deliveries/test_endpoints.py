"""The deliveries API: filters, pages, one delivery's history, the admin token."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.deliveries.service import queue_delivery
from shared.clock import FrozenClock
from tests.services.messaging.api import delivery_api
from tests.services.messaging.deliveries.support import T0, planned


async def test_deliveries_are_listed_by_filter_a_page_at_a_time(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FrozenClock(T0)
    async with delivery_api(own_sessions, clock) as api:
        async with own_sessions() as session:
            for n in range(5):
                await queue_delivery(
                    session,
                    planned(
                        workspace_id=api.workspace_id,
                        trigger_id=f"t-{n}",
                        contact_id=f"c-{n % 2}",
                        account_id="acme" if n < 4 else "globex",
                        planned_at=T0 + timedelta(minutes=n),
                        status="suppressed" if n == 3 else "queued",
                        reason="consent" if n == 3 else None,
                    ),
                )
            await session.commit()
        base = f"/api/messaging/workspaces/{api.workspace}/deliveries"

        first = await api.client.get(
            base, params={"account": "acme", "limit": 2}, headers=api.admin
        )
        assert first.status_code == 200, first.text
        page = first.json()
        assert [i["planned_at"] for i in page["items"]] == [
            (T0 + timedelta(minutes=3)).isoformat().replace("+00:00", "Z"),
            (T0 + timedelta(minutes=2)).isoformat().replace("+00:00", "Z"),
        ]
        second = await api.client.get(
            base,
            params={"account": "acme", "limit": 2, "cursor": page["next_cursor"]},
            headers=api.admin,
        )
        assert len(second.json()["items"]) == 2
        assert second.json()["next_cursor"] is None

        suppressed = await api.client.get(base, params={"status": "suppressed"}, headers=api.admin)
        (item,) = suppressed.json()["items"]
        assert (item["status"], item["reason"]) == ("suppressed", "consent")

        by_contact = await api.client.get(base, params={"contact": "c-1"}, headers=api.admin)
        assert {i["contact_id"] for i in by_contact.json()["items"]} == {"c-1"}

        one = await api.client.get(f"{base}/{item['delivery_id']}", headers=api.admin)
        assert [a["status"] for a in one.json()["history"]] == ["suppressed"]


async def test_bad_input_and_missing_token_answer_json_naming_the_field(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with delivery_api(own_sessions, FrozenClock(T0)) as api:
        base = f"/api/messaging/workspaces/{api.workspace}/deliveries"
        unauthorised = await api.client.get(base)
        assert unauthorised.status_code == 401
        assert unauthorised.json()["detail"]["field"] == "Authorization"

        cursor = await api.client.get(base, params={"cursor": "nope"}, headers=api.admin)
        assert cursor.status_code == 422
        assert cursor.json()["detail"]["field"] == "cursor"

        limit = await api.client.get(base, params={"limit": 1000}, headers=api.admin)
        assert limit.status_code == 422

        missing = await api.client.get(f"{base}/dlv_nope", headers=api.admin)
        assert missing.status_code == 404
        assert missing.json()["detail"]["field"] == "delivery_id"

        workspace = await api.client.get(
            "/api/messaging/workspaces/nowhere/deliveries", headers=api.admin
        )
        assert workspace.status_code == 404
