"""The engine's funnel index becomes partial (``stage IS NOT NULL``, which every state
is), so a stream step's lookup of a batch's states by key can only use the primary key:
on a new database the planner could not tell the two apart and cached a plan reading the
whole path's states for each key.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 22:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_engine_account_states_funnel"
COLUMNS = ["workspace_id", "path_id", "stage", "node"]


def upgrade() -> None:
    with op.batch_alter_table("engine_account_states", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.create_index(
            INDEX,
            COLUMNS,
            unique=False,
            postgresql_where=sa.text("stage IS NOT NULL"),
            sqlite_where=sa.text("stage IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("engine_account_states", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.create_index(INDEX, COLUMNS, unique=False)
