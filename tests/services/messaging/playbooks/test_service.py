"""Playbook versions in the database: publish N+1, refuse unchanged content, show any
version, and the catalog of current versions the trigger worker runs."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.errors import PlaybookNotFound, PlaybookUnchanged
from services.messaging.playbooks import service
from services.messaging.playbooks.models import PlaybookVersionRow
from services.messaging.playbooks.service import REFERENCE_PLAYBOOKS
from shared.clock import FrozenClock
from shared.definitions import DefinitionError
from tests.services.messaging.support import T0

MERCHANT = (REFERENCE_PLAYBOOKS / "platform-merchant.yaml").read_text()
SAAS = (REFERENCE_PLAYBOOKS / "saas-account.yaml").read_text()


async def test_versions_are_numbered_and_the_catalog_runs_the_current_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    workspace, clock = f"ws{uuid.uuid4().hex[:10]}", FrozenClock(T0)
    v2 = MERCHANT.replace("priority: low", "priority: normal")
    async with sessions() as session:
        first = await service.publish(session, workspace, "m.yaml", MERCHANT, clock=clock)
        with pytest.raises(PlaybookUnchanged):
            await service.publish(session, workspace, "m.yaml", MERCHANT, clock=clock)
        second = await service.publish(session, workspace, "m2.yaml", v2, clock=clock)
        await service.publish(session, workspace, "s.yaml", SAAS, clock=clock)
        with pytest.raises(DefinitionError):
            await service.publish(session, workspace, "bad.yaml", "id: x\n", clock=clock)
        await session.commit()
    assert (first.version, second.version) == (1, 2)
    async with sessions() as session:
        catalog = await service.load_catalog(session)
        old = await service.show(session, workspace, first.playbook_id, 1)
        with pytest.raises(PlaybookNotFound):
            await service.show(session, workspace, first.playbook_id, 3)
    mine = catalog[workspace]
    assert [(p.playbook_id, p.version) for p in mine] == [
        ("platform-merchant-outreach", 2),
        ("saas-account-outreach", 1),
    ]
    assert (old.is_current, old.source) == (False, MERCHANT)


async def test_a_stored_version_that_no_longer_loads_is_left_out_of_the_catalog(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    workspace, clock = f"ws{uuid.uuid4().hex[:10]}", FrozenClock(T0)
    async with sessions() as session:
        await service.publish(session, workspace, "m.yaml", MERCHANT, clock=clock)
        await service.publish(session, workspace, "s.yaml", SAAS, clock=clock)
        await session.execute(
            update(PlaybookVersionRow)
            .where(
                PlaybookVersionRow.workspace_id == workspace,
                PlaybookVersionRow.playbook_id == "saas-account-outreach",
            )
            .values(source="id: broken\n", digest="0" * 64)
        )
        await session.commit()
    async with sessions() as session:
        catalog = await service.load_catalog(session)
    assert [p.playbook_id for p in catalog[workspace]] == ["platform-merchant-outreach"]


async def test_playbooks_are_listed_a_page_at_a_time_with_every_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    workspace = f"ws{uuid.uuid4().hex[:10]}"
    v2 = MERCHANT.replace("priority: low", "priority: normal")
    published = [
        (workspace, "m.yaml", MERCHANT),
        (workspace, "m2.yaml", v2),
        (workspace, "s.yaml", SAAS),
        (f"{workspace}x", "s.yaml", SAAS),  # another workspace
    ]
    async with sessions() as session:
        for in_workspace, name, text in published:
            await service.publish(session, in_workspace, name, text, clock=FrozenClock(T0))
        await session.commit()
    async with sessions() as session:
        first, cursor = await service.list_playbooks(session, workspace, limit=1)
        second, last = await service.list_playbooks(session, workspace, cursor=cursor, limit=1)
        info, versions = await service.get_playbook(session, workspace, first[0].playbook_id)
        with pytest.raises(PlaybookNotFound, match="no playbook 'gone' in this workspace"):
            await service.get_playbook(session, workspace, "gone")
    assert [p.playbook_id for p in first + second] == [
        "platform-merchant-outreach",
        "saas-account-outreach",
    ]
    assert (cursor, last) == ("platform-merchant-outreach", None)
    assert (first[0].current.version, info.current.version) == (2, 2)
    assert [(v.version, v.source_name) for v in versions] == [(1, "m.yaml"), (2, "m2.yaml")]
