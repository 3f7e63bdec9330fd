"""Workspaces, write keys and the ingest published-message ledger.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
        sa.UniqueConstraint("name", name=op.f("uq_workspaces_name")),
    )
    op.create_table(
        "write_keys",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_write_keys_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_keys")),
    )
    op.create_index(op.f("ix_write_keys_workspace_id"), "write_keys", ["workspace_id"])
    op.create_table(
        "ingest_published_messages",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=512), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "message_id", name=op.f("pk_ingest_published_messages")
        ),
    )
    op.create_index(
        "ix_ingest_published_messages_published_at",
        "ingest_published_messages",
        ["published_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_ingest_published_messages_published_at", "ingest_published_messages")
    op.drop_table("ingest_published_messages")
    op.drop_index(op.f("ix_write_keys_workspace_id"), "write_keys")
    op.drop_table("write_keys")
    op.drop_table("workspaces")
