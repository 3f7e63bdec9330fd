"""A path's funnel counts are kept, not counted: ``engine_funnel_counts`` holds the number
of ``stage_entered``, ``node_entered`` and ``node_completed`` transitions per path, stage,
node and input partition, written with the history in the same transaction. The history's
index on ``(workspace_id, path_id, kind, node)``, which every transition paid for and only
the funnel read, gives way to a partial index on the ``node_completed`` transitions alone
(the funnel's sample of time in node). The counts start from the history there is
(``partition`` 0: the partition only keeps two engine members off one row).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 01:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMPLETED = "kind = 'node_completed'"


def upgrade() -> None:
    op.create_table(
        "engine_funnel_counts",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("path_id", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id",
            "path_id",
            "stage",
            "node",
            "kind",
            "partition",
            name=op.f("pk_engine_funnel_counts"),
        ),
    )
    op.execute(
        "INSERT INTO engine_funnel_counts "
        "(workspace_id, path_id, stage, node, kind, partition, count) "
        "SELECT workspace_id, path_id, stage, COALESCE(node, ''), kind, 0, COUNT(*) "
        "FROM engine_transitions "
        "WHERE kind IN ('stage_entered', 'node_entered', 'node_completed') "
        "GROUP BY workspace_id, path_id, stage, COALESCE(node, ''), kind"
    )
    with op.batch_alter_table("engine_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_engine_transitions_path_kind")
        batch_op.create_index(
            "ix_engine_transitions_completed",
            ["workspace_id", "path_id", "position"],
            unique=False,
            postgresql_where=sa.text(COMPLETED),
            sqlite_where=sa.text(COMPLETED),
        )


def downgrade() -> None:
    with op.batch_alter_table("engine_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_engine_transitions_completed")
        batch_op.create_index(
            "ix_engine_transitions_path_kind",
            ["workspace_id", "path_id", "kind", "node"],
            unique=False,
        )
    op.drop_table("engine_funnel_counts")
