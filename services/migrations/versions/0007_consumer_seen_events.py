"""Consumers: the event ids each consumer group applied, for deduplication on event_id.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consumer_seen_events",
        sa.Column("consumer_group", sa.String(length=200), nullable=False),
        sa.Column("stage", sa.String(length=249), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("seen_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "consumer_group", "stage", "event_id", name=op.f("pk_consumer_seen_events")
        ),
    )
    with op.batch_alter_table("consumer_seen_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consumer_seen_events_expiry",
            ["consumer_group", "partition", "seen_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("consumer_seen_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consumer_seen_events_expiry")
    op.drop_table("consumer_seen_events")
