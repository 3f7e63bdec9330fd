"""The embedded SQLite database is readable by its owner only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shared.db import create_engine


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
async def test_a_new_database_and_its_folder_are_private(tmp_path: Path) -> None:
    database = tmp_path / "data" / "milepost.db"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (n INTEGER)"))
        await connection.execute(text("INSERT INTO t VALUES (1)"))
        assert mode(database.with_name("milepost.db-wal")) == 0o600
    await engine.dispose()
    assert (mode(database.parent), mode(database)) == (0o700, 0o600)


@pytest.mark.usefixtures("permissive_umask")
async def test_an_existing_world_readable_database_is_made_private(tmp_path: Path) -> None:
    database = tmp_path / "milepost.db"
    database.touch(mode=0o644)
    database.chmod(0o644)
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    await engine.dispose()
    assert mode(database) == 0o600


async def test_in_memory_databases_touch_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"):
        await create_engine(url).dispose()
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 (a test's own folder)


@pytest.mark.postgres
async def test_a_connection_the_server_dropped_fails_once_then_the_pool_connects_again(
    postgres_url: str,
) -> None:
    engine, other = create_engine(postgres_url, pool_size=2), create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            backend = await connection.scalar(text("SELECT pg_backend_pid()"))
        async with other.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})

        with pytest.raises(DBAPIError):
            async with engine.connect() as connection:
                await connection.scalar(text("SELECT 1"))
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()
        await other.dispose()
