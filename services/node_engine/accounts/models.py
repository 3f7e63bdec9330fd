"""Account state per growth path, the append-only transition history, and who belongs where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    literal_column,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class AccountStateRow(Base):
    """One account on one path. ``stage``/``node``/``tier`` are copied out of ``state`` (the
    encoded :class:`AccountState`) for funnels and lookups.

    Its indexes name only columns an event never changes (the key, and the path's accounts
    in account order), and on PostgreSQL its pages keep a fifth free (fill factor 80): an
    update then writes no index entry (a heap-only tuple), whereas an index on ``stage``
    and ``node`` took an entry for nearly every event."""

    __tablename__ = "engine_account_states"
    __table_args__ = (
        Index("ix_engine_account_states_path", "workspace_id", "path_id", "account_id"),
        {"postgresql_with": {"fillfactor": 80}},
    )

    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    path_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    path_version: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(64))
    node: Mapped[str | None] = mapped_column(String(64))
    tier: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


def on_path(workspace_id: str, path_id: str) -> tuple[ColumnElement[bool], ...]:
    """The states of one path (read through ``ix_engine_account_states_path``, in account
    order)."""
    return (
        AccountStateRow.workspace_id == workspace_id,
        AccountStateRow.path_id == path_id,
    )


class AccountFactsRow(Base):
    """An account's facts, whatever its enrolment (bounded: :mod:`~services.node_engine.core.facts`):
    a path it enrols on later starts with them."""

    __tablename__ = "engine_account_facts"

    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TransitionRow(Base):
    """Append-only: every step of every account, pointing at what caused it. A
    transition is written once because its cause is applied once, so its id needs no
    unique key."""

    __tablename__ = "engine_transitions"
    __table_args__ = (
        Index("ix_engine_transitions_account", "workspace_id", "account_id", "position"),
        Index(
            "ix_engine_transitions_completed",
            "workspace_id",
            "path_id",
            "position",
            postgresql_where=sql_text("kind = 'node_completed'"),
            sqlite_where=sql_text("kind = 'node_completed'"),
        ),
    )

    position: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    transition_id: Mapped[str] = mapped_column(String(32))
    workspace_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(256))
    path_id: Mapped[str] = mapped_column(String(64))
    path_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(64))
    node: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    cause_id: Mapped[str] = mapped_column(String(64))
    target_roles: Mapped[list[str]] = mapped_column(JSON)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())


def completed_on_path(workspace_id: str, path_id: str) -> tuple[ColumnElement[bool], ...]:
    """A path's ``node_completed`` transitions, as their partial index reads them: the
    kind is written into the statement, not bound, so even a plan cached for any workspace
    and path knows the index applies."""
    return (
        TransitionRow.workspace_id == workspace_id,
        TransitionRow.path_id == path_id,
        TransitionRow.kind == literal_column("'node_completed'"),
    )


FUNNEL_KINDS = frozenset({"stage_entered", "node_entered", "node_completed"})
"""The transition kinds a path's funnel counts."""


class FunnelCountRow(Base):
    """How many transitions of a funnel kind (:data:`FUNNEL_KINDS`) a path's history holds
    per stage and node, kept with the history in the same transaction. Per input partition,
    so two engine members never write one row; ``node`` is ``""`` for a stage's own entry."""

    __tablename__ = "engine_funnel_counts"

    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    path_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
