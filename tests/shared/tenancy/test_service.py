"""Workspaces and write keys on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import FrozenClock
from shared.db import create_engine, create_session_factory
from shared.tenancy.service import (
    WorkspaceError,
    WriteKeyAuthenticator,
    create_workspace,
    key_id_of,
    list_workspaces,
    revoke_key,
    rotate_key,
    write_key_in,
)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 1, tzinfo=UTC))


async def test_keys_are_stored_hashed_and_rotate_then_revoke(
    database_url: str, clock: FrozenClock
) -> None:
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    authenticator = WriteKeyAuthenticator(sessions, clock=clock, cache_ttl_seconds=5)
    name = f"acme-{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        first = await create_workspace(session, name, clock=clock)
        await session.commit()
    assert key_id_of(first.write_key) == first.key_id
    assert await authenticator.workspace_for(first.write_key) == first.workspace_id
    assert await authenticator.workspace_for(first.write_key[:-1] + "?") is None

    clock.advance(timedelta(seconds=1))  # keys are listed oldest first
    async with sessions() as session:
        second = await rotate_key(session, name, clock=clock, revoke_existing=False)
        await session.commit()
    assert await authenticator.workspace_for(second.write_key) == first.workspace_id

    async with sessions() as session:
        await revoke_key(session, first.key_id, clock=clock)
        await session.commit()
    assert await authenticator.workspace_for(first.write_key) == first.workspace_id  # cached
    clock.advance(timedelta(seconds=6))
    assert await authenticator.workspace_for(first.write_key) is None
    assert await authenticator.workspace_for(second.write_key) == first.workspace_id

    async with sessions() as session:
        listed = dict(await list_workspaces(session))
        stored = next(w for w in listed if w.name == name)
        keys = listed[stored]
    await engine.dispose()
    assert [k.key_id for k in keys] == [first.key_id, second.key_id]
    assert keys[0].revoked_at is not None
    assert keys[1].revoked_at is None


async def test_rotate_with_revoke_existing_leaves_only_the_new_key(
    database_url: str, clock: FrozenClock
) -> None:
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    name = f"globex-{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        old = await create_workspace(session, name, clock=clock)
        new = await rotate_key(session, name, clock=clock, revoke_existing=True)
        await session.commit()
    authenticator = WriteKeyAuthenticator(sessions, clock=clock, cache_ttl_seconds=0)
    assert await authenticator.workspace_for(old.write_key) is None
    assert await authenticator.workspace_for(new.write_key) == old.workspace_id
    await engine.dispose()


async def test_workspace_errors_say_what_is_wrong(sqlite_url: str, clock: FrozenClock) -> None:
    from services.migrations import upgrade_to_head

    engine = create_engine(sqlite_url)
    await upgrade_to_head(engine)
    sessions = create_session_factory(engine)
    async with sessions() as session:
        await create_workspace(session, "acme", clock=clock)
        with pytest.raises(WorkspaceError, match="exists already"):
            await create_workspace(session, "acme", clock=clock)
        with pytest.raises(WorkspaceError, match="no workspace named"):
            await rotate_key(session, "nope", clock=clock, revoke_existing=False)
        with pytest.raises(WorkspaceError, match="no write key"):
            await revoke_key(session, "missing", clock=clock)
    await engine.dispose()


def test_key_id_of_refuses_foreign_shapes() -> None:
    assert key_id_of("segment-style-key") is None
    assert key_id_of("mpk_short_secret") is None
    assert key_id_of("mpk_abcdefghijkl_") is None
    assert key_id_of("mpk_abcdefghijkl_s3cr3t") == "abcdefghijkl"


@pytest.mark.parametrize(
    ("authorization", "write_key"),
    [
        ("Basic bXBrX2tleTo=", "mpk_key"),
        ("basic bXBrX2tleQ==", "mpk_key"),
        ("Bearer mpk_key", "mpk_key"),
        ("", None),
        ("Basic ", None),
        ("Bearer ", None),
        ("Digest mpk_key", None),
        ("Basic !!!", None),
        ("Basic \xe9bXBr", None),
        ("Basic /w==", None),
    ],
)
def test_write_key_in_an_authorization_header(authorization: str, write_key: str | None) -> None:
    assert write_key_in(authorization) == write_key
