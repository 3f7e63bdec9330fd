"""The in-app channel writes a user's feed once per delivery; the product polls it with
the workspace write key, a page at a time, and marks items read."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.channels.in_app import InAppChannel
from shared.clock import FrozenClock
from shared.tenancy.service import key_id_of, revoke_key
from tests.services.messaging.api import delivery_api
from tests.services.messaging.channels.support import message
from tests.services.messaging.deliveries.support import T0


def basic(write_key: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


async def test_the_in_app_channel_writes_each_delivery_once(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FrozenClock(T0)
    async with delivery_api(own_sessions, clock) as api:
        channel = InAppChannel(own_sessions, clock)
        sent = message(channel="in_app", workspace_id=api.workspace_id, target={"user_id": "u-1"})
        assert (await channel.send(sent)).outcome == "sent"
        assert (await channel.send(sent)).outcome == "sent"  # a retried attempt
        missing = await channel.send(message(channel="in_app", target={}))
        assert missing.outcome == "permanent"

        feed = await api.client.get("/api/messaging/feed/u-1", headers=basic(api.write_key))
        assert feed.status_code == 200, feed.text
        (item,) = feed.json()["items"]
        assert (item["subject"], item["body"], item["read_at"]) == (
            "Finish your profile",
            "Two steps left.",
            None,
        )
        assert feed.json()["unread"] == 1


async def test_pages_unread_and_mark_read(own_sessions: async_sessionmaker[AsyncSession]) -> None:
    clock = FrozenClock(T0)
    async with delivery_api(own_sessions, clock) as api:
        channel = InAppChannel(own_sessions, clock)
        for n in range(5):
            clock.advance(timedelta(minutes=1))
            await channel.send(
                message(
                    channel="in_app",
                    delivery_id=f"dlv_{n}",
                    workspace_id=api.workspace_id,
                    target={"user_id": "u-1"},
                    subject=f"m{n}",
                )
            )
        await channel.send(
            message(
                channel="in_app",
                delivery_id="dlv_other",
                workspace_id=api.workspace_id,
                target={"user_id": "u-2"},
            )
        )
        auth = {"authorization": f"Bearer {api.write_key}"}

        first = (await api.client.get("/api/messaging/feed/u-1?limit=2", headers=auth)).json()
        assert [i["subject"] for i in first["items"]] == ["m4", "m3"]
        rest = (
            await api.client.get(
                f"/api/messaging/feed/u-1?limit=10&cursor={first['next_cursor']}", headers=auth
            )
        ).json()
        assert [i["subject"] for i in rest["items"]] == ["m2", "m1", "m0"]
        assert rest["next_cursor"] is None

        seqs = {i["subject"]: i["seq"] for i in first["items"] + rest["items"]}
        marked = await api.client.post(
            "/api/messaging/feed/u-1/read", json={"seqs": [seqs["m4"]]}, headers=auth
        )
        assert marked.json() == {"marked": 1}
        marked = await api.client.post(
            "/api/messaging/feed/u-1/read", json={"up_to": seqs["m1"]}, headers=auth
        )
        assert marked.json() == {"marked": 2}

        unread = (
            await api.client.get("/api/messaging/feed/u-1?unread_only=true", headers=auth)
        ).json()
        assert [i["subject"] for i in unread["items"]] == ["m3", "m2"]
        assert unread["unread"] == 2
        other = (await api.client.get("/api/messaging/feed/u-2", headers=auth)).json()
        assert [i["delivery_id"] for i in other["items"]] == ["dlv_other"]


async def test_the_feed_needs_a_valid_write_key_and_sane_input(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with delivery_api(own_sessions, FrozenClock(T0)) as api:
        for headers in ({}, basic("mk_nope"), {"authorization": "Bearer " + api.write_key + "x"}):
            answer = await api.client.get("/api/messaging/feed/u-1", headers=headers)
            assert answer.status_code == 401
            assert answer.json()["detail"]["field"] == "Authorization"
        auth = basic(api.write_key)
        both = await api.client.post(
            "/api/messaging/feed/u-1/read", json={"seqs": [1], "up_to": 3}, headers=auth
        )
        assert both.status_code == 422
        assert "either seqs or up_to" in both.text
        limit = await api.client.get("/api/messaging/feed/u-1?limit=1000", headers=auth)
        assert limit.status_code == 422


async def test_a_revoked_key_stops_opening_the_feed_within_five_seconds(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    clock = FrozenClock(T0)
    async with delivery_api(own_sessions, clock) as api:
        auth = basic(api.write_key)
        assert (await api.client.get("/api/messaging/feed/u-1", headers=auth)).status_code == 200
        async with own_sessions() as session:
            await revoke_key(session, str(key_id_of(api.write_key)), clock=clock)
            await session.commit()
        clock.advance(timedelta(seconds=5.001))
        answer = await api.client.get("/api/messaging/feed/u-1", headers=auth)
        assert answer.status_code == 401


@pytest.mark.parametrize("number", [2**31, 2**70])
async def test_seqs_past_their_column_are_422(
    own_sessions: async_sessionmaker[AsyncSession], number: int
) -> None:
    async with delivery_api(own_sessions, FrozenClock(T0)) as api:
        auth = basic(api.write_key)
        feed = "/api/messaging/feed/u-1"
        answers = [
            await api.client.get(feed, params={"cursor": number}, headers=auth),
            await api.client.post(f"{feed}/read", json={"seqs": [1, number]}, headers=auth),
            await api.client.post(f"{feed}/read", json={"up_to": number}, headers=auth),
        ]
    assert [answer.status_code for answer in answers] == [422, 422, 422]
