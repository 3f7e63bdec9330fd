"""Migration 0022: a delivery's lease gets its own column, the claim index holds the open
deliveries only and the index on ``due_at`` goes, and on PostgreSQL the pages keep a fifth
free; the way down restores them and moves a running lease back into ``due_at``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.messaging.deliveries.models import DeliveryRow
from shared.db import create_engine
from shared.db.statements import table_of
from shared.db.types import UtcDateTime
from tests.services.migrations.support import indexes, migrate, on_a_fresh_postgres

T0 = datetime(2026, 12, 5, 9, tzinfo=UTC)
LEASE_END = T0 + timedelta(seconds=60)


def delivery(delivery_id: str, *, leased_until: datetime | None) -> dict[str, object]:
    return {
        **dict.fromkeys(("delivery_id", "trigger_id", "contact_id", "step_id"), delivery_id),
        **dict.fromkeys(("playbook_id", "playbook_version", "role", "reason")),
        **{"provider_message_id": None, "finished_at": None, "leased_until": leased_until},
        **{"workspace_id": "w", "account_id": "a", "channel": "webhook", "category": "c"},
        **{"target": {"url": "http://127.0.0.1/"}, "subject": "", "body": "", "trace": {}},
        **{"priority": 0, "status": "queued", "attempts": 1},
        **{"planned_at": T0, "not_before": T0, "due_at": T0},
    }


async def _postgres_only(engine: AsyncEngine, query: str) -> object:
    async with engine.begin() as connection:
        return await connection.scalar(sa.text(query))


async def _moved(url: str, *, postgres: bool) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "0022")
        found = await indexes(engine, "messaging_deliveries")
        assert "ix_messaging_deliveries_claim" in found
        assert "ix_messaging_deliveries_due" not in found
        if postgres:
            assert await _postgres_only(
                engine,
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_messaging_deliveries_claim'",
            ) == (
                "CREATE INDEX ix_messaging_deliveries_claim ON public.messaging_deliveries "
                "USING btree (priority DESC, due_at) WHERE (due_at IS NOT NULL)"
            )
            assert await _postgres_only(
                engine, "SELECT reloptions FROM pg_class WHERE relname = 'messaging_deliveries'"
            ) == ["fillfactor=80"]
        async with engine.begin() as connection:
            await connection.execute(
                sa.insert(table_of(DeliveryRow)),
                [
                    delivery("d_leased", leased_until=LEASE_END),
                    delivery("d_due", leased_until=None),
                ],
            )
        await migrate(engine, "0021", down=True)
        assert "ix_messaging_deliveries_due" in await indexes(engine, "messaging_deliveries")
        async with engine.connect() as connection:
            query = sa.select(
                sa.column("delivery_id", sa.String()), sa.column("due_at", UtcDateTime())
            ).select_from(sa.table("messaging_deliveries"))
            due = dict(list(await connection.execute(query)))
            columns = await connection.run_sync(
                lambda sync: [
                    c["name"] for c in sa.inspect(sync).get_columns("messaging_deliveries")
                ]
            )
        assert "leased_until" not in columns
        assert due == {"d_due": T0, "d_leased": LEASE_END}
        if postgres:
            assert (
                await _postgres_only(
                    engine, "SELECT reloptions FROM pg_class WHERE relname = 'messaging_deliveries'"
                )
                is None
            )
    finally:
        await engine.dispose()


async def test_sqlite_leases_in_a_column_of_their_own_and_back(sqlite_url: str) -> None:
    await _moved(sqlite_url, postgres=False)


@pytest.mark.postgres
def test_postgres_leases_in_a_column_of_their_own_and_back(postgres_server_url: str) -> None:
    on_a_fresh_postgres(postgres_server_url, lambda url: _moved(url, postgres=True))
