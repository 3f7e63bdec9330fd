"""Messaging: one store of a message's idempotency key. A message's plan is its delivery:
``messaging_deliveries`` gains the ``role`` the contact was reached through (set on the
trigger worker's messages only; attempt 0 keeps the planned status and reason) and its
``channel`` may be empty (no channel reached the contact). Tasks' plans move to
``messaging_task_plans``; ``messaging_plans`` is dropped.

Upgrade: each delivery takes its plan's role (and an empty channel where its plan had
none); the task plans (category ``task``, no channel, no delivery) are copied. A message
plan without a delivery could not be sent and is not kept. Downgrade rebuilds
``messaging_plans`` from both (priorities by name, the planned status from attempt 0).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLES_FROM_PLANS = """
UPDATE messaging_deliveries SET
  role = (SELECT p.role FROM messaging_plans p
    WHERE p.trigger_id = messaging_deliveries.trigger_id
      AND p.contact_id = messaging_deliveries.contact_id
      AND p.step_id = messaging_deliveries.step_id),
  channel = CASE WHEN EXISTS (SELECT 1 FROM messaging_plans p
    WHERE p.trigger_id = messaging_deliveries.trigger_id
      AND p.contact_id = messaging_deliveries.contact_id
      AND p.step_id = messaging_deliveries.step_id AND p.channel IS NULL)
    THEN NULL ELSE channel END
WHERE EXISTS (SELECT 1 FROM messaging_plans p
  WHERE p.trigger_id = messaging_deliveries.trigger_id
    AND p.contact_id = messaging_deliveries.contact_id
    AND p.step_id = messaging_deliveries.step_id)
"""
_TASK_PLANS_FROM_PLANS = """
INSERT INTO messaging_task_plans
  (trigger_id, owner_id, step_id, workspace_id, account_id, priority, status, reason,
   planned_at, due_at)
SELECT trigger_id, contact_id, step_id, workspace_id, account_id, priority, status, reason,
  planned_at, not_before
FROM messaging_plans
WHERE category = 'task' AND channel IS NULL AND NOT EXISTS (
  SELECT 1 FROM messaging_deliveries d WHERE d.trigger_id = messaging_plans.trigger_id
    AND d.contact_id = messaging_plans.contact_id AND d.step_id = messaging_plans.step_id)
"""
_PLANS_FROM_DELIVERIES = """
INSERT INTO messaging_plans
  (trigger_id, contact_id, step_id, workspace_id, account_id, role, channel, priority,
   category, status, reason, planned_at, not_before)
SELECT d.trigger_id, d.contact_id, d.step_id, d.workspace_id, d.account_id, d.role,
  d.channel,
  CASE WHEN d.priority <= 0 THEN 'low' WHEN d.priority = 1 THEN 'normal'
    WHEN d.priority = 2 THEN 'high' ELSE 'critical' END,
  d.category, a.status, a.reason, d.planned_at, d.not_before
FROM messaging_deliveries d
JOIN messaging_delivery_attempts a ON a.delivery_id = d.delivery_id AND a.attempt = 0
WHERE d.role IS NOT NULL
"""
_PLANS_FROM_TASK_PLANS = """
INSERT INTO messaging_plans
  (trigger_id, contact_id, step_id, workspace_id, account_id, role, channel, priority,
   category, status, reason, planned_at, not_before)
SELECT trigger_id, owner_id, step_id, workspace_id, account_id, 'account_owner', NULL,
  priority, 'task', status, reason, planned_at, due_at
FROM messaging_task_plans
"""


def upgrade() -> None:
    with op.batch_alter_table("messaging_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=32), nullable=True))
        batch_op.alter_column("channel", existing_type=sa.String(length=16), nullable=True)
        batch_op.create_index(
            "ix_messaging_deliveries_contact_window",
            ["workspace_id", "contact_id", "not_before"],
            unique=False,
        )
        batch_op.create_index(
            "ix_messaging_deliveries_role_window",
            ["workspace_id", "account_id", "role", "not_before"],
            unique=False,
        )
    op.execute(_ROLES_FROM_PLANS)
    op.create_table(
        "messaging_task_plans",
        sa.Column("trigger_id", sa.String(length=128), nullable=False),
        sa.Column("owner_id", sa.String(length=256), nullable=False),
        sa.Column("step_id", sa.String(length=130), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=256), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("planned_at", UtcDateTime(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "trigger_id", "owner_id", "step_id", name=op.f("pk_messaging_task_plans")
        ),
    )
    op.create_index(
        "ix_messaging_task_plans_step",
        "messaging_task_plans",
        ["workspace_id", "account_id", "step_id", "planned_at"],
        unique=False,
    )
    op.execute(_TASK_PLANS_FROM_PLANS)
    op.drop_index("ix_messaging_plans_contact", table_name="messaging_plans")
    op.drop_index("ix_messaging_plans_account_role", table_name="messaging_plans")
    op.drop_table("messaging_plans")


def downgrade() -> None:
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
    op.create_index(
        "ix_messaging_plans_account_role",
        "messaging_plans",
        ["workspace_id", "account_id", "role", "not_before"],
        unique=False,
    )
    op.create_index(
        "ix_messaging_plans_contact",
        "messaging_plans",
        ["workspace_id", "contact_id", "not_before"],
        unique=False,
    )
    op.execute(_PLANS_FROM_DELIVERIES)
    op.execute(_PLANS_FROM_TASK_PLANS)
    op.drop_index("ix_messaging_task_plans_step", table_name="messaging_task_plans")
    op.drop_table("messaging_task_plans")
    op.execute("UPDATE messaging_deliveries SET channel = 'email' WHERE channel IS NULL")
    with op.batch_alter_table("messaging_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_deliveries_role_window")
        batch_op.drop_index("ix_messaging_deliveries_contact_window")
        batch_op.alter_column("channel", existing_type=sa.String(length=16), nullable=False)
        batch_op.drop_column("role")
