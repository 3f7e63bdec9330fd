"""An account's scoring state, its score history, and who belongs where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, LargeBinary, String
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class ScoringAccountRow(Base):
    """One account: its metrics (an encoded :class:`MetricStore`), its facts, and its current
    finding. ``revision`` grows with every write; a write expecting another revision means
    another group member wrote the account first (the batch is rolled back and retried).
    The contract columns are what portfolio figures read (renewal rate, retention, LTV:CAC)."""

    __tablename__ = "scoring_accounts"
    __table_args__ = (
        Index("ix_scoring_accounts_sweep", "partition", "evaluated_at"),
        Index(
            "ix_scoring_accounts_risk",
            "workspace_id",
            "risk_level",
            # Partial, so a batch's lookup by key cannot use it (see the engine's funnel
            # index); a query for one risk level implies the predicate.
            postgresql_where=sql_text("risk_level IS NOT NULL"),
            sqlite_where=sql_text("risk_level IS NOT NULL"),
        ),
    )

    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, doc="The events partition that owns it.")
    revision: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[bytes] = mapped_column(LargeBinary)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    health: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(16))
    risk_level: Mapped[str | None] = mapped_column(String(16))
    risk: Mapped[dict[str, Any] | None] = mapped_column(JSON, doc="The raised signals.")
    tier: Mapped[str | None] = mapped_column(String(64))
    peers: Mapped[dict[str, Any] | None] = mapped_column(
        JSON, doc="The peer standings it contributes and its last core problem's key."
    )
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON)
    north_star: Mapped[float | None] = mapped_column(Float, doc="The North Star's value.")
    contract_value: Mapped[float | None] = mapped_column(Float)
    acquisition_cost: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3))
    renewal_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    evaluated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ScoreHistoryRow(Base):
    """Append-only: every score event published for an account."""

    __tablename__ = "scoring_history"
    __table_args__ = (
        Index("ix_scoring_history_account", "workspace_id", "account_id", "position"),
    )

    position: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    score_event_id: Mapped[str] = mapped_column(String(32), unique=True)
    workspace_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(32))
    health: Mapped[float | None] = mapped_column(Float)
    risk_level: Mapped[str | None] = mapped_column(String(16))
    tier: Mapped[str | None] = mapped_column(String(64))
    signals: Mapped[list[str]] = mapped_column(JSON)
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime())
