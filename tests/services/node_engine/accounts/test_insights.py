"""Who is where on a path, for the console: the accounts at a stage, node or tier (paged by
id, filtered to the overdue ones), and the overdue count per node, which a later entry into
the node clears."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from services.node_engine.accounts.encoding import encode_state
from services.node_engine.accounts.repository import append_transitions, save_states
from services.node_engine.core.state import (
    AccountState,
    Observation,
    Timer,
    TimerFired,
    TimerKind,
)
from services.node_engine.core.transition import transition
from shared.clock import FrozenClock
from tests.services.node_engine.accounts.test_endpoints import Api, open_api


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async for opened in open_api(database_url):
        yield opened


async def overdue(api: Api, state: AccountState) -> AccountState:
    """Fire the due timer of the account's node, as the engine would once it is due."""
    clock = api.resources.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(days=10))
    assert state.node is not None
    timer = Timer(
        id=f"due-{state.account_id}",
        path_id=state.path_id,
        due_at=int(clock.now().timestamp()),
        kind=TimerKind.DUE,
        node=state.node,
        visit=state.nodes[state.node].visits,
    )
    decision = transition(state, TimerFired(timer), path=api.path, now=clock.now())
    assert decision.state is not None
    assert [t.kind.value for t in decision.transitions] == ["node_overdue"]
    async with api.resources.sessions() as session:
        await append_transitions(session, [(decision.state, t, 0) for t in decision.transitions])
        await save_states(
            session, [(decision.state, encode_state(decision.state))], now=clock.now()
        )
        await session.commit()
    return decision.state


async def test_the_accounts_at_a_node_are_paged_by_id_with_their_overdue_flag(api: Api) -> None:
    for account in ("c", "a", "d", "b"):
        await api.walk(account, ["Merchant Approved"])
    await api.walk("elsewhere", [])
    await overdue(api, await api.walk("e", ["Merchant Approved"]))
    url = f"{api.base}/paths/platform-merchant/accounts"
    at_node = {"stage": "account_setup", "node": "complete_profile"}

    first = (await api.client.get(url, params={**at_node, "limit": 3})).json()
    assert [i["account_id"] for i in first["items"]] == ["a", "b", "c"]
    assert first["next_cursor"] == "c"
    second = (await api.client.get(url, params={**at_node, "cursor": "c"})).json()
    assert [(i["account_id"], i["overdue"]) for i in second["items"]] == [
        ("d", False),
        ("e", True),
    ]
    assert second["next_cursor"] is None
    item = second["items"][1]
    assert (item["stage"], item["node"], item["path_version"]) == (
        "account_setup",
        "complete_profile",
        1,
    )
    assert item["node_entered_at"] is not None

    only = (await api.client.get(url, params={**at_node, "overdue": "true"})).json()
    assert [i["account_id"] for i in only["items"]] == ["e"]
    staged = (await api.client.get(url, params={"stage": "settle_in"})).json()
    assert [i["account_id"] for i in staged["items"]] == ["elsewhere"]
    assert (await api.client.get(url, params={"tier": "L5"})).json()["items"] == []


async def test_overdue_counts_per_node_and_a_new_entry_clears_them(api: Api) -> None:
    late = await overdue(api, await api.walk("late", ["Merchant Approved"]))
    await overdue(api, await api.walk("later", ["Merchant Approved"]))
    await overdue(api, await api.walk("new", []))
    await api.walk("fine", ["Merchant Approved"])
    url = f"{api.base}/paths/platform-merchant/overdue"

    counts = (await api.client.get(url)).json()
    assert sorted((n["stage"], n["node"], n["accounts"]) for n in counts["nodes"]) == [
        ("account_setup", "complete_profile", 2),
        ("settle_in", "application_approved", 1),
    ]

    clock = api.resources.clock
    assert isinstance(clock, FrozenClock)
    moved_on = transition(
        late,
        _event(api, "late", "Profile Completed", int(clock.now().timestamp())),
        path=api.path,
        now=clock.now(),
    )
    assert moved_on.state is not None
    async with api.resources.sessions() as session:
        await append_transitions(session, [(moved_on.state, t, 0) for t in moved_on.transitions])
        await save_states(
            session, [(moved_on.state, encode_state(moved_on.state))], now=clock.now()
        )
        await session.commit()
    counts = (await api.client.get(url)).json()
    assert sorted((n["node"], n["accounts"]) for n in counts["nodes"]) == [
        ("application_approved", 1),
        ("complete_profile", 1),
    ]


async def test_the_lists_need_the_admin_token_and_bounded_parameters(api: Api) -> None:
    url = f"{api.base}/paths/platform-merchant/accounts"
    anonymous = await api.client.get(url, headers={"Authorization": ""})
    assert anonymous.status_code == 401
    too_many = await api.client.get(url, params={"limit": 201})
    assert too_many.status_code == 422
    long_cursor = await api.client.get(url, params={"cursor": "x" * 257})
    assert long_cursor.status_code == 422
    unknown = await api.client.get("/api/engine/workspaces/nope/paths/platform-merchant/overdue")
    assert unknown.status_code == 404
    assert unknown.json()["detail"]["field"] == "workspace"


def _event(api: Api, account: str, name: str, at: int) -> Observation:
    return Observation(
        f"{account}-{name}",
        api.workspace_id,
        account,
        "track",
        name,
        "u1",
        frozenset(),
        {},
        {},
        "segment",
        at,
    )
