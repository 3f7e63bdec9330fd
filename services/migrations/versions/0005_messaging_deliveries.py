"""Messaging: deliveries and attempts, tasks, subscriptions and the in-app feed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 08:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "messaging_deliveries",
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=256), nullable=False),
        sa.Column("trigger_id", sa.String(length=128), nullable=False),
        sa.Column("contact_id", sa.String(length=256), nullable=False),
        sa.Column("step_id", sa.String(length=200), nullable=False),
        sa.Column("playbook_id", sa.String(length=64), nullable=True),
        sa.Column("playbook_version", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("provider_message_id", sa.String(length=256), nullable=True),
        sa.Column("planned_at", UtcDateTime(), nullable=False),
        sa.Column("not_before", UtcDateTime(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_messaging_deliveries")),
        sa.UniqueConstraint(
            "trigger_id", "contact_id", "step_id", name="uq_messaging_deliveries_key"
        ),
    )
    with op.batch_alter_table("messaging_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_deliveries_account",
            ["workspace_id", "account_id", "planned_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_messaging_deliveries_contact",
            ["workspace_id", "contact_id", "planned_at"],
            unique=False,
        )
        batch_op.create_index("ix_messaging_deliveries_due", ["due_at"], unique=False)
        batch_op.create_index(
            "ix_messaging_deliveries_status", ["workspace_id", "status", "planned_at"], unique=False
        )

    op.create_table(
        "messaging_delivery_attempts",
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("provider_message_id", sa.String(length=256), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("retry_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint(
            "delivery_id", "attempt", name=op.f("pk_messaging_delivery_attempts")
        ),
    )
    op.create_table(
        "messaging_feed_items",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("read_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_messaging_feed_items")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_messaging_feed_items_delivery_id")),
    )
    with op.batch_alter_table("messaging_feed_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_feed_items_user", ["workspace_id", "user_id", "seq"], unique=False
        )

    op.create_table(
        "messaging_subscription_triggers",
        sa.Column("trigger_id", sa.String(length=128), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=256), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("trigger_id", name=op.f("pk_messaging_subscription_triggers")),
    )
    with op.batch_alter_table("messaging_subscription_triggers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_subscription_triggers_time", ["workspace_id", "occurred_at"], unique=False
        )

    op.create_table(
        "messaging_subscriptions",
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("paths", sa.JSON(), nullable=False),
        sa.Column("nodes", sa.JSON(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_messaging_subscriptions")),
    )
    with op.batch_alter_table("messaging_subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_subscriptions_workspace", ["workspace_id", "created_at"], unique=False
        )

    op.create_table(
        "messaging_tasks",
        sa.Column("task_id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=256), nullable=False),
        sa.Column("trigger_id", sa.String(length=128), nullable=False),
        sa.Column("step_id", sa.String(length=200), nullable=False),
        sa.Column("playbook_id", sa.String(length=64), nullable=True),
        sa.Column("playbook_version", sa.Integer(), nullable=True),
        sa.Column("owner_contact_id", sa.String(length=256), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("escalate_at", UtcDateTime(), nullable=True),
        sa.Column("escalate_to", sa.String(length=64), nullable=True),
        sa.Column("escalated_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_messaging_tasks")),
        sa.UniqueConstraint("trigger_id", "step_id", name="uq_messaging_tasks_key"),
    )
    with op.batch_alter_table("messaging_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_messaging_tasks_account", ["workspace_id", "account_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_messaging_tasks_escalation", ["status", "escalate_at"], unique=False
        )
        batch_op.create_index(
            "ix_messaging_tasks_owner",
            ["workspace_id", "owner_contact_id", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messaging_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_tasks_owner")
        batch_op.drop_index("ix_messaging_tasks_escalation")
        batch_op.drop_index("ix_messaging_tasks_account")

    op.drop_table("messaging_tasks")
    with op.batch_alter_table("messaging_subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_subscriptions_workspace")

    op.drop_table("messaging_subscriptions")
    with op.batch_alter_table("messaging_subscription_triggers", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_subscription_triggers_time")

    op.drop_table("messaging_subscription_triggers")
    with op.batch_alter_table("messaging_feed_items", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_feed_items_user")

    op.drop_table("messaging_feed_items")
    op.drop_table("messaging_delivery_attempts")
    with op.batch_alter_table("messaging_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_deliveries_status")
        batch_op.drop_index("ix_messaging_deliveries_due")
        batch_op.drop_index("ix_messaging_deliveries_contact")
        batch_op.drop_index("ix_messaging_deliveries_account")

    op.drop_table("messaging_deliveries")
