"""The engine's states lose their funnel index on ``(workspace_id, path_id, stage, node)``
for one on ``(workspace_id, path_id, account_id)``, and on PostgreSQL keep a fifth of each
page free (fill factor 80). No index names a column an event changes, so an update with
room on its page writes no index entry (a heap-only tuple); the funnel index took an
entry for nearly every event. The funnel, the overdue counts and the accounts at a node
read a path's states through the new index, in account order. Existing pages take the
fill factor as they are rewritten.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 12:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("engine_account_states", schema=None) as batch_op:
        batch_op.drop_index("ix_engine_account_states_funnel")
        batch_op.create_index(
            "ix_engine_account_states_path", ["workspace_id", "path_id", "account_id"]
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE engine_account_states SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE engine_account_states RESET (fillfactor)")
    with op.batch_alter_table("engine_account_states", schema=None) as batch_op:
        batch_op.drop_index("ix_engine_account_states_path")
        batch_op.create_index(
            "ix_engine_account_states_funnel",
            ["workspace_id", "path_id", "stage", "node"],
            postgresql_where=sa.text("stage IS NOT NULL"),
            sqlite_where=sa.text("stage IS NOT NULL"),
        )
