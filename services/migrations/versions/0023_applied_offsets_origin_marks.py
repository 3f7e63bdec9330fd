"""Each input partition's applied offset keeps its origin marks (``origins``): per origin
partition, the last record applied that came stamped with its origin
(:mod:`shared.consuming.origins`). A copy of such a record comes at or below the mark and
is skipped, so the readers of the attribution stage's records keep no row per event in
``consumer_seen_events`` (records without an origin still do). Rows from before the
upgrade have none: their partitions' first stamped records set them.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05 22:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("engine_applied_offsets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origins", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("engine_applied_offsets", schema=None) as batch_op:
        batch_op.drop_column("origins")
