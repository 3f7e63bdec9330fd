"""Messaging: contacts, account owners, playbooks and versions, and the plan ledger.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "messaging_contacts",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.String(length=256), nullable=False),
        sa.Column("account_id", sa.String(length=256), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("chat_app_ids", sa.JSON(), nullable=False),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("locale", sa.String(length=35), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("consent", sa.JSON(), nullable=False),
        sa.Column("bounced", sa.JSON(), nullable=False),
        sa.Column("is_account_owner", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "contact_id", name=op.f("pk_messaging_contacts")),
    )
    with op.batch_alter_table("messaging_contacts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_contacts_account", ["workspace_id", "account_id"], unique=False
        )

    op.create_table(
        "messaging_account_owners",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=256), nullable=False),
        sa.Column("contact_id", sa.String(length=256), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "account_id", name=op.f("pk_messaging_account_owners")
        ),
    )
    op.create_table(
        "messaging_playbooks",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("playbook_id", sa.String(length=64), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "playbook_id", name=op.f("pk_messaging_playbooks")),
    )
    op.create_table(
        "messaging_playbook_versions",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("playbook_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_name", sa.String(length=500), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "workspace_id", "playbook_id", "version", name=op.f("pk_messaging_playbook_versions")
        ),
    )
    op.create_table(
        "messaging_plans",
        sa.Column("trigger_id", sa.String(length=128), nullable=False),
        sa.Column("contact_id", sa.String(length=256), nullable=False),
        sa.Column("step_id", sa.String(length=130), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("planned_at", UtcDateTime(), nullable=False),
        sa.Column("not_before", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "trigger_id", "contact_id", "step_id", name=op.f("pk_messaging_plans")
        ),
    )
    with op.batch_alter_table("messaging_plans", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_plans_account_role",
            ["workspace_id", "account_id", "role", "not_before"],
            unique=False,
        )
        batch_op.create_index(
            "ix_messaging_plans_contact", ["workspace_id", "contact_id", "not_before"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("messaging_plans", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_plans_contact")
        batch_op.drop_index("ix_messaging_plans_account_role")
    op.drop_table("messaging_plans")
    op.drop_table("messaging_playbook_versions")
    op.drop_table("messaging_playbooks")
    op.drop_table("messaging_account_owners")
    with op.batch_alter_table("messaging_contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_contacts_account")
    op.drop_table("messaging_contacts")
