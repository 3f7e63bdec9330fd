"""Messaging: each delivery keeps the trace context of the trigger that planned it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 11:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messaging_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("trace", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("messaging_deliveries", schema=None) as batch_op:
        batch_op.drop_column("trace")
