"""Migration 0013 on SQLite and PostgreSQL: message plans become their deliveries (the role
and an empty channel carried over), task plans move to their own table, the plans API reads
the same decisions afterwards, and a downgrade rebuilds the plan ledger as it was."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.messaging.deliveries.message import delivery_id_of
from services.messaging.processing import repository as ledger
from shared.db import create_engine
from shared.db.types import UtcDateTime
from tests.services.migrations.support import migrate, on_a_fresh_postgres

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLAN_FIELDS = (
    "trigger_id",
    "contact_id",
    "step_id",
    "account_id",
    "role",
    "channel",
    "priority",
    "category",
    "status",
    "reason",
)
PLANS = sa.table(
    "messaging_plans",
    *(sa.column(name) for name in (*PLAN_FIELDS, "workspace_id")),
    sa.column("planned_at", UtcDateTime()),
    sa.column("not_before", UtcDateTime()),
)
DELIVERIES = sa.table(
    "messaging_deliveries",
    *(sa.column(name) for name in ("delivery_id", "workspace_id", "account_id", "trigger_id")),
    *(sa.column(name) for name in ("contact_id", "step_id", "channel", "subject", "body")),
    *(sa.column(name) for name in ("category", "priority", "status", "reason", "attempts")),
    sa.column("target", sa.JSON()),
    sa.column("trace", sa.JSON()),
    *(sa.column(name, UtcDateTime()) for name in ("planned_at", "not_before", "due_at")),
    sa.column("finished_at", UtcDateTime()),
)
ATTEMPTS = sa.table(
    "messaging_delivery_attempts",
    *(sa.column(name) for name in ("delivery_id", "attempt", "status", "reason")),
    sa.column("started_at", UtcDateTime()),
)


def plan(contact: str, step: str, role: str, channel: str | None, **fields: Any) -> dict[str, Any]:
    return {
        "trigger_id": "t-1",
        "contact_id": contact,
        "step_id": step,
        "workspace_id": "ws_m",
        "account_id": "acme",
        "role": role,
        "channel": channel,
        "priority": "normal",
        "category": "lifecycle",
        "status": "queued",
        "reason": None,
        "planned_at": T0,
        "not_before": T0 + timedelta(hours=1),
        **fields,
    }


SENT = plan("a1", "onboarding/welcome", "admin", "email", priority="high")
UNREACHED = plan(
    "b1",
    "onboarding/welcome",
    "decision_maker",
    None,
    status="suppressed",
    reason="no reachable channel (tried email)",
)
TASK = plan("o1", "risk/owner_call", "account_owner", None, category="task", status="task")
SUBSCRIPTION = plan("sub_1", "subscription", "", "webhook", status="sent")


def delivery(source: dict[str, Any], rank: int, attempts: int) -> dict[str, Any]:
    key = (source["trigger_id"], source["contact_id"], source["step_id"])
    return {
        "delivery_id": delivery_id_of(*key),
        **{k: source[k] for k in ("workspace_id", "account_id", "trigger_id", "contact_id")},
        **{k: source[k] for k in ("step_id", "category", "planned_at", "not_before", "reason")},
        "channel": source["channel"] or "email",
        "status": "sent" if attempts else source["status"],
        "target": {},
        "trace": {},
        "subject": "s",
        "body": "b",
        "priority": rank,
        "attempts": attempts,
        "due_at": None,
        "finished_at": None,
    }


def attempt(source: dict[str, Any], number: int, status: str) -> dict[str, Any]:
    key = (source["trigger_id"], source["contact_id"], source["step_id"])
    reason = source["reason"] if number == 0 else None
    return {
        "delivery_id": delivery_id_of(*key),
        "attempt": number,
        "status": status,
        "reason": reason,
        "started_at": T0,
    }


async def seed(connection: AsyncConnection) -> None:
    """At 0012: a sent message, one no channel reached, a task and a subscription's
    delivery (no plan)."""
    await connection.execute(sa.insert(PLANS), [SENT, UNREACHED, TASK])
    await connection.execute(
        sa.insert(DELIVERIES),
        [delivery(SENT, 2, 1), delivery(UNREACHED, 1, 0), delivery(SUBSCRIPTION, 1, 1)],
    )
    await connection.execute(
        sa.insert(ATTEMPTS),
        [attempt(SENT, 0, "queued"), attempt(SENT, 1, "sent"), attempt(UNREACHED, 0, "suppressed")],
    )


def as_listed(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(tuple(row[name] for name in PLAN_FIELDS) for row in rows)


async def _backfill(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "0012")
        async with engine.begin() as connection:
            await seed(connection)
        await migrate(engine, "0013")
        async with engine.connect() as connection:
            deliveries = await connection.execute(
                sa.select(DELIVERIES.c.contact_id, sa.column("role"), DELIVERIES.c.channel)
                .select_from(DELIVERIES)
                .order_by(DELIVERIES.c.contact_id)
            )
            assert list(deliveries) == [
                ("a1", "admin", "email"),
                ("b1", "decision_maker", None),
                ("sub_1", None, "webhook"),
            ]
            tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            assert "messaging_plans" not in tables
        await migrate(engine, "head")  # the ledger reads through today's models
        async with AsyncSession(engine) as session:
            plans = await ledger.page(session, "ws_m", account_id=None, trigger_id=None, limit=10)
        listed = [{name: getattr(p, name) for name in PLAN_FIELDS} for p in plans]
        assert as_listed(listed) == as_listed([SENT, UNREACHED, TASK])
        await migrate(engine, "0012", down=True)
        async with engine.connect() as connection:
            restored = (await connection.execute(sa.select(PLANS))).mappings().all()
            assert as_listed([dict(row) for row in restored]) == as_listed([SENT, UNREACHED, TASK])
            channels = await connection.execute(
                sa.select(DELIVERIES.c.contact_id, DELIVERIES.c.channel).order_by(
                    DELIVERIES.c.contact_id
                )
            )
            assert list(channels) == [("a1", "email"), ("b1", "email"), ("sub_1", "webhook")]
    finally:
        await engine.dispose()


async def test_sqlite_backfill_and_back(sqlite_url: str) -> None:
    await _backfill(sqlite_url)


@pytest.mark.postgres
def test_postgres_backfill_and_back(postgres_server_url: str) -> None:
    on_a_fresh_postgres(postgres_server_url, _backfill)
