"""Async engines for PostgreSQL (asyncpg) and the embedded SQLite (aiosqlite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine for ``url``. SQLite gets WAL and a busy timeout, so a CLI command can
    write while the embedded server runs; PostgreSQL gets a bounded pool."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return _create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit; only entry points commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
