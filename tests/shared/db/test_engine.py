"""The embedded SQLite database is readable by its owner only; PostgreSQL sessions find a
batch's rows by key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import LargeBinary, String, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import create_engine, create_session_factory
from shared.db.statements import insert_rows, rows_by_keys


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


KEY = ("workspace_id", "account_id")


class _Scratch(DeclarativeBase):
    pass


class StateLikeRow(_Scratch):
    """Shaped like the engine's states: a composite key and a few hundred bytes."""

    __tablename__ = "test_engine_state_like"
    __table_args__ = {"prefixes": ["TEMPORARY"]}
    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[bytes] = mapped_column(LargeBinary)


@pytest.mark.postgres
async def test_a_batch_of_keys_is_read_by_index_not_by_scanning_the_table(
    postgres_url: str,
) -> None:
    """Hundreds of keys in a table of 20,000 rows of a few hundred bytes: PostgreSQL's
    default cost of a random read prices the index probes above a scan of the table."""
    engine = create_engine(postgres_url)
    try:
        async with create_session_factory(engine)() as session:
            await session.run_sync(lambda sync: _Scratch.metadata.create_all(sync.connection()))
            rows = [
                {"workspace_id": "w", "account_id": f"a{i}", "state": bytes(400)}
                for i in range(20_000)
            ]
            await insert_rows(session, StateLikeRow, rows)
            await session.execute(text(f"ANALYZE {StateLikeRow.__tablename__}"))
            scans_before = await _table_scans(session)
            keys = [("w", f"a{i}") for i in range(0, 20_000, 50)]
            found = await rows_by_keys(session, StateLikeRow, KEY, keys, ("account_id",))
            assert len(found) == len(keys)
            assert await _table_scans(session) == scans_before
            await session.rollback()
    finally:
        await engine.dispose()


async def _table_scans(session: AsyncSession) -> int:
    """Whole-table scans of :class:`StateLikeRow`'s table in this transaction so far."""
    scans = await session.scalar(
        text("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = :name"),
        {"name": StateLikeRow.__tablename__},
    )
    return int(scans or 0)
