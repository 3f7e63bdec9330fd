"""The history keeps no unique key on ``transition_id``: a transition is written once
because its cause is applied once (the consumer's seen events and fenced offsets commit in
the history's transaction), and a second key, on a random id, cost every transition a
unique-index probe and insert. The history is appended with ``COPY`` on PostgreSQL.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 04:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("engine_transitions", schema=None) as batch_op:
        batch_op.drop_constraint("uq_engine_transitions_transition_id", type_="unique")


def downgrade() -> None:
    with op.batch_alter_table("engine_transitions", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_engine_transitions_transition_id", ["transition_id"])
