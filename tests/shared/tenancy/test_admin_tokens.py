"""Admin tokens on SQLite and PostgreSQL: scoped, listed, revoked, and stored as hashes only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import FrozenClock
from shared.tenancy.admin_tokens import (
    EVERY_WORKSPACE,
    Grant,
    create_token,
    grant_of,
    list_tokens,
    revoke_token,
)
from shared.tenancy.models import AdminToken
from shared.tenancy.service import WorkspaceError, create_workspace

T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
async def workspace(sessions: async_sessionmaker[AsyncSession], clock: FrozenClock) -> str:
    name = f"acme-{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        await create_workspace(session, name, clock=clock)
        await session.commit()
    return name


@pytest.fixture
async def session(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessions() as opened:
        yield opened


async def test_a_token_opens_its_workspace_and_only_its_hash_is_stored(
    session: AsyncSession, workspace: str, clock: FrozenClock
) -> None:
    issued = await create_token(session, workspace=workspace, label="ops", clock=clock)
    await session.commit()
    assert issued.token.startswith(f"mpa_{issued.token_id}_")
    grant = await grant_of(session, issued.token)
    assert grant == Grant(workspace)
    assert grant.covers(workspace)
    assert not grant.covers("another")
    stored = await session.scalar(select(AdminToken).where(AdminToken.id == issued.token_id))
    assert stored is not None
    assert issued.token not in (stored.secret_hash, stored.label, stored.id)
    secret = issued.token.removeprefix(f"mpa_{issued.token_id}_")
    assert secret not in stored.secret_hash
    assert len(stored.secret_hash) == 64


async def test_a_token_for_every_workspace(session: AsyncSession, clock: FrozenClock) -> None:
    issued = await create_token(session, workspace=None, label="", clock=clock)
    assert issued.workspace is None
    grant = await grant_of(session, issued.token)
    assert grant == EVERY_WORKSPACE
    assert grant.covers("any-name")


async def test_revoked_forged_and_foreign_tokens_open_nothing(
    session: AsyncSession, workspace: str, clock: FrozenClock
) -> None:
    issued = await create_token(session, workspace=workspace, label="ops", clock=clock)
    forged = issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")
    assert await grant_of(session, forged) is None
    assert await grant_of(session, "mpa_abcdefghijkl_nope") is None
    assert await grant_of(session, "not-ours") is None
    assert await grant_of(session, issued.token.replace("mpa_", "mpk_", 1)) is None
    await revoke_token(session, issued.token_id, clock=clock)
    await revoke_token(session, issued.token_id, clock=clock)  # again: no change
    assert await grant_of(session, issued.token) is None


async def test_listing_shows_scope_label_and_revocation(
    session: AsyncSession, workspace: str, clock: FrozenClock
) -> None:
    scoped = await create_token(session, workspace=workspace, label="ops", clock=clock)
    every = await create_token(session, workspace=None, label="ci", clock=clock)
    await revoke_token(session, every.token_id, clock=clock)
    listed = {t.token_id: t for t in await list_tokens(session)}
    assert (listed[scoped.token_id].workspace, listed[scoped.token_id].label) == (workspace, "ops")
    assert listed[scoped.token_id].revoked_at is None
    assert (listed[every.token_id].workspace, listed[every.token_id].revoked_at) == (None, T0)
    assert listed[every.token_id].created_at == T0


async def test_refusals_name_what_is_wrong(session: AsyncSession, clock: FrozenClock) -> None:
    with pytest.raises(WorkspaceError, match="no workspace named 'nowhere'"):
        await create_token(session, workspace="nowhere", label="", clock=clock)
    with pytest.raises(WorkspaceError, match="at most 100"):
        await create_token(session, workspace=None, label="x" * 101, clock=clock)
    with pytest.raises(WorkspaceError, match="no admin token 'nope'"):
        await revoke_token(session, "nope", clock=clock)
