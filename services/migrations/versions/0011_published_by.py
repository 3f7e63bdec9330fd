"""Versioned definitions record who published each version: the admin token's label, or
``operator`` (a setting's token, the CLI, embedded mode; also every version published before).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-04 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("engine_path_versions", "messaging_playbook_versions", "scoring_metric_versions")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "published_by",
                    sa.String(length=100),
                    nullable=False,
                    server_default=sa.text("'operator'"),
                )
            )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("published_by")
