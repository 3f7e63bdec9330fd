"""Migration 0017 on a database with history: the funnel's counts start from the
transitions there are, and the history's funnel index gives way to the partial one."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from shared.db import create_engine
from tests.services.migrations.support import migrate, on_a_fresh_postgres

HISTORY = [
    ("t1", "stage_entered", "onboarding", None),
    ("t2", "node_entered", "onboarding", "first_order"),
    ("t3", "node_entered", "onboarding", "first_order"),
    ("t4", "node_completed", "onboarding", "first_order"),
    ("t5", "condition_failed", "onboarding", "first_order"),
]


async def _carried(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine, "0016")
        async with engine.begin() as connection:
            for transition_id, kind, stage, node in HISTORY:
                await connection.execute(
                    text(
                        "INSERT INTO engine_transitions (transition_id, workspace_id, "
                        "account_id, path_id, path_version, kind, stage, node, reason, "
                        "cause_id, target_roles, payload, occurred_at) VALUES (:id, 'w', "
                        "'a', 'p', 1, :kind, :stage, :node, '', 'e', '[]', '{}', "
                        "'2026-03-02 09:00:00+00:00')"
                    ),
                    {"id": transition_id, "kind": kind, "stage": stage, "node": node},
                )
        await migrate(engine, "0017")
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT stage, node, kind, partition, count FROM engine_funnel_counts "
                        "ORDER BY kind, node"
                    )
                )
            ).all()
            indexes = await connection.run_sync(
                lambda sync: {i["name"] for i in inspect(sync).get_indexes("engine_transitions")}
            )
        assert [tuple(row) for row in rows] == [
            ("onboarding", "first_order", "node_completed", 0, 1),
            ("onboarding", "first_order", "node_entered", 0, 2),
            ("onboarding", "", "stage_entered", 0, 1),
        ]
        assert "ix_engine_transitions_completed" in indexes
        assert "ix_engine_transitions_path_kind" not in indexes
        await migrate(engine, "0016", down=True)
    finally:
        await engine.dispose()


async def test_sqlite_counts_the_history_there_is(sqlite_url: str) -> None:
    await _carried(sqlite_url)


@pytest.mark.postgres
def test_postgres_counts_the_history_there_is(postgres_server_url: str) -> None:
    on_a_fresh_postgres(postgres_server_url, _carried)
