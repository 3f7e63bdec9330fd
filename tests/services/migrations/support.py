"""What the data-carrying migration tests share: moving a database to a revision, and a
fresh PostgreSQL database to move."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from alembic import command
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from services.migrations import alembic_config
from tests.conftest import fresh_postgres_database


async def migrate(engine: AsyncEngine, revision: str, *, down: bool = False) -> None:
    """Upgrade (or with ``down``, downgrade) the database behind ``engine`` to ``revision``."""
    move = command.downgrade if down else command.upgrade
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: move(alembic_config(sync), revision))


def on_a_fresh_postgres(server_url: str, check: Callable[[str], Coroutine[Any, Any, None]]) -> None:
    """Run ``check`` on a new, unmigrated PostgreSQL database of ``server_url`` (dropped
    after): a migration test moves it through the revisions itself."""
    for url in fresh_postgres_database(server_url):
        asyncio.run(check(url))


async def indexes(engine: AsyncEngine, table: str) -> dict[str, list[str | None]]:
    """The indexes of ``table`` (but its primary key), by name, with their columns."""
    async with engine.begin() as connection:
        found = await connection.run_sync(lambda sync: inspect(sync).get_indexes(table))
    return {index["name"] or "": index["column_names"] for index in found}
