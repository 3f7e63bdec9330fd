"""Alembic migrations for every service's tables, runnable from code and the CLI.

One schema history for the whole product (services share one database), applied by the
Helm migration job or ``milepost db upgrade``, and automatically by the embedded mode.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

SCRIPT_LOCATION = Path(__file__).parent


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Apply every pending migration; a no-op when the schema is current."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))


async def check_models_match(engine: AsyncEngine) -> None:
    """``alembic check``: raises when the models have changes no migration covers."""
    async with engine.connect() as connection:
        await connection.run_sync(lambda sync: command.check(alembic_config(sync)))
