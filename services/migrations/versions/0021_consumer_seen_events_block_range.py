"""The seen event ids lose their B-tree on ``(consumer_group, partition, seen_at)`` for an
index on ``seen_at``, a block-range (BRIN) index on PostgreSQL. It serves only the hourly
pruning of ids past the window; rows are appended in time order, so the block ranges of
the oldest ids are found without an index entry per row, and every event applied saves
one B-tree insertion.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 14:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consumer_seen_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consumer_seen_events_expiry")
        batch_op.create_index(
            "ix_consumer_seen_events_seen_at", ["seen_at"], postgresql_using="brin"
        )


def downgrade() -> None:
    with op.batch_alter_table("consumer_seen_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consumer_seen_events_seen_at")
        batch_op.create_index(
            "ix_consumer_seen_events_expiry", ["consumer_group", "partition", "seen_at"]
        )
