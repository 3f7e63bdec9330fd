"""Queries on published metric definitions. Repositories flush, never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.catalog.models import MetricSetRow, MetricVersionRow


async def metric_set(session: AsyncSession, workspace_id: str) -> MetricSetRow | None:
    return await session.get(MetricSetRow, workspace_id)


async def page_of_versions(
    session: AsyncSession, workspace_id: str, *, before: int | None, limit: int
) -> Sequence[MetricVersionRow]:
    """Up to ``limit`` versions, newest first, those below ``before`` (keyset paging)."""
    query = select(MetricVersionRow).where(MetricVersionRow.workspace_id == workspace_id)
    if before is not None:
        query = query.where(MetricVersionRow.version < before)
    query = query.order_by(MetricVersionRow.version.desc()).limit(limit)
    return (await session.scalars(query)).all()


async def current_versions(session: AsyncSession) -> Sequence[MetricVersionRow]:
    """Every workspace's current version."""
    query = select(MetricVersionRow).join(
        MetricSetRow,
        (MetricSetRow.workspace_id == MetricVersionRow.workspace_id)
        & (MetricSetRow.current_version == MetricVersionRow.version),
    )
    return (await session.scalars(query)).all()
