"""Published metric definitions: one row per workspace, one per immutable version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class MetricSetRow(Base):
    """A workspace's metric definitions: the version in force."""

    __tablename__ = "scoring_metric_sets"

    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    current_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class MetricVersionRow(Base):
    """One published version: the file as written, its digest and its North Star."""

    __tablename__ = "scoring_metric_versions"

    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    source_name: Mapped[str] = mapped_column(String(500))
    digest: Mapped[str] = mapped_column(String(64))
    north_star: Mapped[str] = mapped_column(String(64))
    metric_count: Mapped[int] = mapped_column(Integer)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published_by: Mapped[str] = mapped_column(
        String(100), doc="The admin token's label, or ``operator`` (setting's token, CLI)."
    )
