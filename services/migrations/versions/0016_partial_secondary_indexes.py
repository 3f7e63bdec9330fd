"""The secondary indexes that share their first column with a table's key become partial
(on a column no key lookup names), so a stream step's lookup of a batch's rows by key can
only use the primary key. On a new database, before its first ``ANALYZE``, the planner
cannot tell the indexes apart for that lookup, and a plan it cached on the other index
read every row of the workspace (or path) for each key, long after the table had grown.

- ``ix_engine_account_states_funnel``: ``stage IS NOT NULL`` (every state has a stage;
  the funnel queries say so).
- ``ix_scoring_accounts_risk``: ``risk_level IS NOT NULL`` (a query for one risk level
  implies it).
- ``ix_messaging_contacts_account``: ``account_id IS NOT NULL`` (a query for given
  accounts implies it).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 22:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTIAL = (
    (
        "engine_account_states",
        "ix_engine_account_states_funnel",
        ["workspace_id", "path_id", "stage", "node"],
        "stage IS NOT NULL",
    ),
    (
        "scoring_accounts",
        "ix_scoring_accounts_risk",
        ["workspace_id", "risk_level"],
        "risk_level IS NOT NULL",
    ),
    (
        "messaging_contacts",
        "ix_messaging_contacts_account",
        ["workspace_id", "account_id"],
        "account_id IS NOT NULL",
    ),
)


def upgrade() -> None:
    for table, index, columns, predicate in PARTIAL:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)
            batch_op.create_index(
                index,
                columns,
                unique=False,
                postgresql_where=sa.text(predicate),
                sqlite_where=sa.text(predicate),
            )


def downgrade() -> None:
    for table, index, columns, _ in PARTIAL:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index)
            batch_op.create_index(index, columns, unique=False)
