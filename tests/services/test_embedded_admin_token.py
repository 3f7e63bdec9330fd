"""The embedded mode's admin token: made on first start, kept 0600 in the data folder, only
its hash in the database, made again when the one on file no longer works."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from services.embedded import embedded_admin_token
from services.migrations import upgrade_to_head
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.db import create_engine, create_session_factory
from shared.runtime import Resources
from shared.settings import RuntimeSettings
from shared.tenancy.admin_tokens import EVERY_WORKSPACE, grant_of, revoke_token
from shared.tenancy.models import AdminToken


@pytest.fixture
async def resources(sqlite_url: str) -> AsyncIterator[Resources]:
    engine = create_engine(sqlite_url)
    await upgrade_to_head(engine)
    clock = FrozenClock(datetime(2026, 12, 1, tzinfo=UTC))
    yield Resources(
        InMemoryBus(), engine, create_session_factory(engine), clock, CollectorRegistry()
    )
    await engine.dispose()


async def test_the_token_is_made_once_and_kept_private(
    resources: Resources, tmp_path: Path
) -> None:
    runtime = RuntimeSettings(data_dir=tmp_path)
    token = await embedded_admin_token(runtime, resources)
    token_file = tmp_path / "admin-token"
    assert token_file.read_text() == token + "\n"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert await embedded_admin_token(runtime, resources) == token
    async with resources.sessions() as session:
        assert await grant_of(session, token) == EVERY_WORKSPACE
        stored = (await session.scalars(select(AdminToken))).all()
    assert [row.label for row in stored] == ["embedded"]
    assert token not in stored[0].secret_hash


async def test_a_revoked_token_on_file_is_replaced(resources: Resources, tmp_path: Path) -> None:
    runtime = RuntimeSettings(data_dir=tmp_path)
    first = await embedded_admin_token(runtime, resources)
    async with resources.sessions() as session:
        await revoke_token(session, first.split("_")[1], clock=resources.clock)
        await session.commit()
    second = await embedded_admin_token(runtime, resources)
    assert second != first
    assert (tmp_path / "admin-token").read_text().strip() == second
    assert (tmp_path / "admin-token").stat().st_mode & 0o777 == 0o600
