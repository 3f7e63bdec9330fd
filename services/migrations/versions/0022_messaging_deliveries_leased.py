"""A delivery's claim moves ``leased_until`` (a new column, in no index) instead of
``due_at``; the claim index holds the open deliveries only (``due_at`` set) and the index
on ``due_at`` alone goes (the backlog count reads the claim index); on PostgreSQL each page
keeps a fifth free (fill factor 80). A claim then changes no indexed column and, with room
on its page, writes a heap-only tuple and no index entry, where it wrote one in each of the
table's nine indexes; a finished delivery leaves the claim index. Deliveries leased before
the upgrade keep their lease in ``due_at``, as before.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 18:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.db.types import UtcDateTime

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("due_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("messaging_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("leased_until", UtcDateTime(), nullable=True))
        batch_op.drop_index("ix_messaging_deliveries_due")
        batch_op.drop_index("ix_messaging_deliveries_claim")
        batch_op.create_index(
            "ix_messaging_deliveries_claim",
            [sa.desc(sa.column("priority")), "due_at"],
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE messaging_deliveries SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE messaging_deliveries RESET (fillfactor)")
    op.execute("UPDATE messaging_deliveries SET due_at = leased_until WHERE leased_until > due_at")
    with op.batch_alter_table("messaging_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_messaging_deliveries_claim")
        batch_op.create_index(
            "ix_messaging_deliveries_claim", [sa.desc(sa.column("priority")), "due_at"]
        )
        batch_op.create_index("ix_messaging_deliveries_due", ["due_at"])
        batch_op.drop_column("leased_until")
