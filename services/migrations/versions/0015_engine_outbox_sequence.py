"""The engine's outbox takes the shared outbox columns: a ``sequence`` (each checkpoint's
triggers published again in the order they were added) and record ids up to 80
characters. Rows already there keep sequence 0 (their own checkpoint's order, as before).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("engine_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sequence", sa.Integer(), nullable=False, server_default="0"))
        batch_op.alter_column(
            "record_id", existing_type=sa.String(length=64), type_=sa.String(length=80)
        )
    with op.batch_alter_table("engine_outbox", schema=None) as batch_op:
        batch_op.alter_column("sequence", existing_type=sa.Integer(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("engine_outbox", schema=None) as batch_op:
        batch_op.alter_column(
            "record_id", existing_type=sa.String(length=80), type_=sa.String(length=64)
        )
        batch_op.drop_column("sequence")
