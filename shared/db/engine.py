"""Async engines for PostgreSQL (asyncpg) and the embedded SQLite (aiosqlite)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from shared.db.types import json_column_text

RECYCLE_SECONDS = 300
"""A pooled PostgreSQL connection older than this is replaced when next taken out (before a
firewall or proxy drops it for idleness)."""
PLANNER_SETTINGS = {"random_page_cost": "1.1"}
"""How Milepost's PostgreSQL sessions plan. A stream step looks up the states of hundreds
of keys at once (``rows_by_keys``); with PostgreSQL's default cost of a random page (4.0,
a disk seek) the planner prices hundreds of index probes above a scan of the whole table,
and picks the scan, whose cost grows with the table (16 ms at 14,000 states, 40 ms at
100,000, against 2 ms by index). The working set lives in memory or on SSD, where a random
read costs about a sequential one: 1.1 is the value PostgreSQL's guidance gives there."""


def create_engine(url: str, *, pool_size: int = 20) -> AsyncEngine:
    """An engine for ``url``. SQLite gets WAL and a busy timeout, so a CLI command can
    write while the embedded server runs, and a file only its owner reads (see
    :func:`private_sqlite_file`).

    PostgreSQL gets a pool of at most ``pool_size`` connections, kept once opened (a busy
    moment waits for one rather than opening and closing extra ones), and no ping on each
    checkout (three round trips per transaction). Its sessions plan with
    :data:`PLANNER_SETTINGS`. A connection the server dropped (a
    restart) fails its next use, which discards every connection of the pool; the caller
    retries as for any database error (ingest publishes without its ledger, a consumer
    rolls its batch back).

    JSON columns are written by :func:`~shared.db.types.json_column_text` on both."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        private_sqlite_file(parsed.database)
        engine = _create_async_engine(
            url, connect_args={"timeout": 30}, json_serializer=json_column_text
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return _create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=RECYCLE_SECONDS,
        connect_args={"server_settings": PLANNER_SETTINGS},
        json_serializer=json_column_text,
    )


def private_sqlite_file(database: str | None) -> None:
    """Create the database file (and missing folders, 0700) with mode 0600, or take an
    existing file's group and world access away. SQLite gives the file's ``-wal`` and
    ``-shm`` companions the same mode. In-memory databases are left alone."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with contextlib.suppress(PermissionError):
        path.chmod(0o600)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit; only entry points commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
