"""Publishing, listing, showing and pausing growth-path versions, and the engine's catalog,
on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.node_engine.errors import PathNotFound, PathRejected
from services.node_engine.paths.models import PathVersionRow
from services.node_engine.paths.service import (
    MigrationPolicy,
    get_path,
    list_paths,
    load_catalog,
    publish,
    set_paused,
    show,
)
from shared.clock import FrozenClock
from shared.db import create_engine, create_session_factory
from shared.definitions import DefinitionError

REFERENCE = Path(__file__).parents[4] / "services" / "node_engine" / "paths" / "reference"
MERCHANT = (REFERENCE / "platform-merchant.yaml").read_text()
SAAS = (REFERENCE / "saas-account.yaml").read_text()
T0 = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_engine(database_url)
    async with create_session_factory(engine)() as opened:
        yield opened
    await engine.dispose()


@pytest.fixture
def workspace() -> str:
    return f"ws_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


def edited(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


async def _publish(
    session: AsyncSession,
    workspace: str,
    clock: FrozenClock,
    text: str = MERCHANT,
    migration: MigrationPolicy = "pin",
    node_map: dict[str, str] | None = None,
) -> int:
    clock.advance(timedelta(minutes=1))
    info = await publish(
        session,
        workspace,
        "platform-merchant.yaml",
        text,
        migration=migration,
        node_map=node_map,
        clock=clock,
    )
    await session.commit()
    return info.version


async def test_publishing_creates_versions_and_makes_the_newest_current(
    session: AsyncSession, workspace: str, clock: FrozenClock
) -> None:
    assert await _publish(session, workspace, clock) == 1
    v2_text = edited(MERCHANT, "due: P2D", "due: P4D")
    assert await _publish(session, workspace, clock, v2_text, "migrate") == 2

    info, versions = await get_path(session, workspace, "platform-merchant")
    assert (info.current.version, info.paused) == (2, False)
    assert [(v.version, v.migration) for v in versions] == [(1, "pin"), (2, "migrate")]
    assert versions[1].published_at == T0 + timedelta(minutes=2)
    assert versions[0].name == "Platform merchant growth path"

    detail = await show(session, workspace, "platform-merchant", 1)
    assert (detail.info.version, detail.is_current) == (1, False)
    assert detail.source == MERCHANT
    assert detail.path.nodes_by_id["application_approved"].due_seconds == 2 * 86400
    current = await show(session, workspace, "platform-merchant")
    assert current.is_current
    assert current.path.nodes_by_id["application_approved"].due_seconds == 4 * 86400


async def test_the_same_content_as_the_current_version_is_refused(
    session: AsyncSession, workspace: str, clock: FrozenClock
) -> None:
    await _publish(session, workspace, clock)
    reformatted = "# only a comment and the layout differ\n" + MERCHANT.replace(
        "review_every: P1D", "review_every:   P1D"
    )
    with pytest.raises(PathRejected, match="v1 has the same content") as refused:
        await _publish(session, workspace, clock, reformatted)
    assert refused.value.field == "source"
    await session.rollback()
    # an older version's content may come back as a new version (a rollback)
    await _publish(session, workspace, clock, edited(MERCHANT, "due: P2D", "due: P4D"))
    assert await _publish(session, workspace, clock, MERCHANT) == 3


async def test_an_invalid_file_names_its_line_and_field(
    session: AsyncSession, workspace: str, clock: FrozenClock
) -> None:
    wrong = "due: P3D\n        notify: [admin, decision_maker]"
    line = MERCHANT[: MERCHANT.index(wrong)].count("\n") + 1
    broken = edited(MERCHANT, wrong, "due: soon\n        notify: [admin, decision_maker]")
    with pytest.raises(DefinitionError) as error:
        await _publish(session, workspace, clock, broken)
    [problem] = error.value.problems
    assert (problem.file, problem.line, problem.field) == (
        "platform-merchant.yaml",
        line,
        "stages[1].nodes[1].due",
    )
    assert "ISO 8601" in problem.message
    assert (await list_paths(session, workspace)) == ([], None)


@pytest.mark.parametrize(
    ("migration", "node_map", "field", "message"),
    [
        ("migrate", {"ten_orders": "nope"}, "node_map.ten_orders", "'nope' is no stage or node"),
        ("migrate", {"nope": "ten_orders"}, "node_map.nope", "no stage or node of an earlier"),
        ("pin", {"ten_orders": "ten_orders"}, "node_map", "only with the migrate policy"),
        ("teleport", None, "migration", "unknown migration policy"),
    ],
)
async def test_a_bad_node_map_or_policy_is_refused(
    session: AsyncSession,
    workspace: str,
    clock: FrozenClock,
    migration: MigrationPolicy,
    node_map: dict[str, str] | None,
    field: str,
    message: str,
) -> None:
    await _publish(session, workspace, clock)
    v2_text = edited(MERCHANT, "id: ten_orders", "id: ten_orders_done")
    with pytest.raises(PathRejected, match=message) as refused:
        await _publish(session, workspace, clock, v2_text, migration, node_map)
    assert refused.value.field == field


async def test_a_node_map_may_name_ids_of_any_earlier_version(
    session: AsyncSession, workspace: str, clock: FrozenClock
) -> None:
    with pytest.raises(PathRejected, match="first version has no earlier nodes"):
        await _publish(session, workspace, clock, MERCHANT, "migrate", {"a": "b"})
    await session.rollback()
    await _publish(session, workspace, clock)
    v2 = edited(MERCHANT, "id: first_order", "id: first_sale")
    await _publish(session, workspace, clock, v2, "migrate", {"first_order": "first_sale"})
    v3 = edited(v2, "id: first_sale", "id: first_purchase")
    # `first_order` exists only in v1, `first_sale` only in v2: both may be mapped
    version = await _publish(
        session,
        workspace,
        clock,
        v3,
        "migrate",
        {"first_order": "first_purchase", "first_sale": "nurturing"},
    )
    assert version == 3
    detail = await show(session, workspace, "platform-merchant")
    assert dict(detail.info.node_map) == {
        "first_order": "first_purchase",
        "first_sale": "nurturing",
    }


async def test_paths_are_listed_a_page_at_a_time(
    session: AsyncSession, workspace: str, clock: FrozenClock
) -> None:
    for suffix in ("c", "a", "b"):
        await _publish(
            session, workspace, clock, edited(MERCHANT, "id: platform-merchant", f"id: p-{suffix}")
        )
    await _publish(session, workspace, clock, SAAS)
    await _publish(session, f"{workspace}x", clock, SAAS)  # another workspace

    first, cursor = await list_paths(session, workspace, limit=2)
    assert [p.path_id for p in first] == ["p-a", "p-b"]
    assert cursor == "p-b"
    second, cursor = await list_paths(session, workspace, cursor=cursor, limit=2)
    assert [p.path_id for p in second] == ["p-c", "saas-account"]
    assert cursor is None
    assert second[1].current.name == "SaaS account growth path"


async def test_pause_and_resume(session: AsyncSession, workspace: str, clock: FrozenClock) -> None:
    await _publish(session, workspace, clock)
    clock.advance(timedelta(hours=1))
    paused = await set_paused(session, workspace, "platform-merchant", paused=True, clock=clock)
    await session.commit()
    assert paused.paused
    assert paused.updated_at == clock.now()
    assert (await get_path(session, workspace, "platform-merchant"))[0].paused
    resumed = await set_paused(session, workspace, "platform-merchant", paused=False, clock=clock)
    await session.commit()
    assert not resumed.paused


async def test_unknown_paths_and_versions(
    session: AsyncSession, workspace: str, clock: FrozenClock
) -> None:
    with pytest.raises(PathNotFound, match="no growth path 'nope'"):
        await get_path(session, workspace, "nope")
    with pytest.raises(PathNotFound):
        await set_paused(session, workspace, "nope", paused=True, clock=clock)
    await _publish(session, workspace, clock)
    with pytest.raises(PathNotFound, match="has no version 7"):
        await show(session, workspace, "platform-merchant", 7)


async def test_the_catalog_holds_every_version_compiled_with_the_current_policy(
    session: AsyncSession, workspace: str, clock: FrozenClock
) -> None:
    await _publish(session, workspace, clock)
    v2 = edited(MERCHANT, "id: first_order", "id: first_sale")
    await _publish(session, workspace, clock, v2, "migrate", {"first_order": "first_sale"})
    await _publish(session, workspace, clock, SAAS, "restart")
    await set_paused(session, workspace, "saas-account", paused=True, clock=clock)
    await session.commit()

    catalog = await load_catalog(session)
    merchant, saas = catalog[workspace]
    assert (merchant.path_id, merchant.current.version, merchant.paused) == (
        "platform-merchant",
        2,
        False,
    )
    assert merchant.migration == "migrate"
    assert dict(merchant.node_map) == {"first_order": "first_sale"}
    assert sorted(merchant.versions) == [1, 2]
    assert "first_order" in merchant.versions[1].nodes_by_id
    assert merchant.versions[2] is merchant.current
    assert (saas.path_id, saas.paused, saas.migration) == ("saas-account", True, "restart")
    # compiled once: a second load reuses the same compiled versions
    again = await load_catalog(session)
    assert again[workspace][0].versions[1] is merchant.versions[1]


async def test_a_stored_version_that_no_longer_loads_leaves_only_its_path_out(
    session: AsyncSession, workspace: str, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    await _publish(session, workspace, clock)
    await _publish(session, workspace, clock, SAAS)
    stored = await session.get(PathVersionRow, (workspace, "saas-account", 1))
    assert stored is not None
    stored.source = SAAS.replace("business_type: service", "business_type: barter")
    stored.digest = "0" * 64  # as if written by another release
    await session.commit()
    catalog = await load_catalog(session)
    assert [p.path_id for p in catalog[workspace]] == ["platform-merchant"]
    assert "no longer loads" in caplog.text
