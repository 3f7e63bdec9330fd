"""Node engine: facts per account whatever its enrolment; messaging: open tasks looked up
by account and step (at most one open task per account and kind).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "engine_account_facts",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=256), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "account_id", name=op.f("pk_engine_account_facts")),
    )
    with op.batch_alter_table("messaging_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_tasks_kind",
            ["workspace_id", "account_id", "step_id", "status"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messaging_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_tasks_kind")
    op.drop_table("engine_account_facts")
