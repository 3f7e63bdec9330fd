"""Attribution once: the attribution stage keeps the memberships (the engine's, moved to
``attribution_memberships``) and its outbox; scoring's own memberships go. The stage's
consumer group starts on ``milepost.events`` where the engine's left off, so no event is
attributed, and applied, a second time; the engine's offsets and marks of its re-keyed
topic go with the topic.

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-04 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENGINE_GROUP, STAGE_GROUP = "milepost-engine", "milepost-attribution"
"""The default consumer groups (``MILEPOST_ENGINE_GROUP_ID``, ``MILEPOST_ATTRIBUTION_GROUP_ID``)."""


def upgrade() -> None:
    _memberships("attribution_memberships")
    op.execute(
        "INSERT INTO attribution_memberships "
        "SELECT workspace_id, user_id, account_id, roles, updated_at FROM engine_memberships"
    )
    op.drop_table("engine_memberships")
    op.drop_table("scoring_memberships")
    op.create_table(
        "attribution_outbox",
        sa.Column("record_id", sa.String(length=80), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_attribution_outbox")),
    )
    with op.batch_alter_table("attribution_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attribution_outbox_partition"), ["partition"], unique=False
        )
    op.execute(
        "DELETE FROM engine_applied_offsets "
        "WHERE topic = 'milepost.engine.rekeyed' OR topic LIKE 'milepost.engine.rekeyed<-%'"
    )
    op.execute(
        sa.text(
            "INSERT INTO engine_applied_offsets (consumer_group, topic, partition, next_offset) "
            "SELECT :stage, topic, partition, next_offset FROM engine_applied_offsets "
            "WHERE consumer_group = :engine AND topic = 'milepost.events'"
        ).bindparams(stage=STAGE_GROUP, engine=ENGINE_GROUP)
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM engine_applied_offsets WHERE consumer_group = :stage "
            "AND topic = 'milepost.events'"
        ).bindparams(stage=STAGE_GROUP)
    )
    with op.batch_alter_table("attribution_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attribution_outbox_partition"))
    op.drop_table("attribution_outbox")
    _memberships("scoring_memberships")
    _memberships("engine_memberships")
    op.execute("INSERT INTO engine_memberships SELECT * FROM attribution_memberships")
    op.execute("INSERT INTO scoring_memberships SELECT * FROM attribution_memberships")
    op.drop_table("attribution_memberships")


def _memberships(table: str) -> None:
    op.create_table(
        table,
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("account_id", sa.String(length=256), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "user_id", name=op.f(f"pk_{table}")),
    )
