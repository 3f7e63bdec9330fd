"""Messaging: deliveries indexed in the dispatcher's claim order (priority, then due time),
so a claim reads its first rows instead of sorting the whole due backlog.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-04 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messaging_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_deliveries_claim",
            [sa.desc(sa.column("priority")), "due_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messaging_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_deliveries_claim")
