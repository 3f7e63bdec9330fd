"""Metric-definition versions per workspace: publish, list, show, and the catalog.

A published version is immutable. Publishing validates the file (a
:class:`~shared.definitions.DefinitionError` names file, line and field), refuses content
identical to the current version (:class:`DefinitionsUnchanged`: the same digest makes no
new version) and makes version N+1 current. Metrics count from the moment their version is
in force; stored buckets of metrics with the same id carry over. A workspace with no
published version is scored with the reference definitions
(``services/scoring/reference/metrics.yaml``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.definitions import MAX_PAGE as MAX_PAGE
from services.definitions import DefinitionRows, chosen_version, publish_version
from services.scoring.catalog import repository
from services.scoring.catalog.models import MetricSetRow, MetricVersionRow
from services.scoring.definitions import MetricDefinitions, load_metrics
from services.scoring.errors import DefinitionsNotFound, DefinitionsUnchanged
from shared.clock import Clock
from shared.definitions import DefinitionError
from shared.tenancy.admin_tokens import OPERATOR

logger = logging.getLogger(__name__)

REFERENCE_METRICS = Path(__file__).parents[1] / "reference" / "metrics.yaml"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    workspace_id: str
    version: int
    source_name: str
    digest: str
    north_star: str
    metric_count: int
    published_at: datetime
    published_by: str
    current: bool


@dataclass(frozen=True, slots=True)
class VersionDetail:
    info: VersionInfo
    source: str
    definitions: MetricDefinitions


@dataclass(frozen=True, slots=True)
class PublishedDefinitions:
    """The definitions a workspace counts with: its current version (0: the reference)."""

    version: int
    definitions: MetricDefinitions


def reference_definitions() -> PublishedDefinitions:
    """The reference metric definitions, as version 0 (loaded once per process)."""
    global _REFERENCE
    if _REFERENCE is None:
        _REFERENCE = PublishedDefinitions(0, load_metrics(REFERENCE_METRICS))
    return _REFERENCE


_REFERENCE: PublishedDefinitions | None = None


async def publish(
    session: AsyncSession,
    workspace_id: str,
    source_name: str,
    text: str,
    *,
    published_by: str = OPERATOR,
    clock: Clock,
) -> VersionInfo:
    """Validate the file and make it version N+1, published by ``published_by``; raises
    :class:`DefinitionError` or :class:`DefinitionsUnchanged`."""
    definitions = load_metrics(source_name, text=text)
    row = await publish_version(
        session,
        _rows(workspace_id),
        definitions.digest,
        new_head=lambda number, now: MetricSetRow(
            workspace_id=workspace_id, current_version=number, updated_at=now
        ),
        new_version=lambda number, now: MetricVersionRow(
            workspace_id=workspace_id,
            version=number,
            source=text,
            source_name=source_name,
            digest=definitions.digest,
            north_star=definitions.north_star,
            metric_count=len(definitions.metrics),
            published_at=now,
        ),
        unchanged=DefinitionsUnchanged,
        version_name=lambda number: f"version {number}",
        published_by=published_by,
        clock=clock,
    )
    return _info(row, current=True)


async def list_versions(
    session: AsyncSession, workspace_id: str, *, cursor: int | None = None, limit: int = 50
) -> tuple[list[VersionInfo], int | None]:
    """A page of the workspace's versions, newest first, and the next page's cursor."""
    limit = max(1, min(limit, MAX_PAGE))
    current = await repository.metric_set(session, workspace_id)
    number = None if current is None else current.current_version
    rows = await repository.page_of_versions(session, workspace_id, before=cursor, limit=limit + 1)
    page = [_info(row, current=row.version == number) for row in rows[:limit]]
    return page, (page[-1].version if len(rows) > limit else None)


async def show(
    session: AsyncSession, workspace_id: str, version: int | None = None
) -> VersionDetail:
    """One version (default: the current one) with its source and compiled form."""
    current, row = await chosen_version(
        session,
        _rows(workspace_id),
        version,
        missing=DefinitionsNotFound(
            "no metric definitions published in this workspace; it is scored with the "
            "reference definitions"
        ),
        no_version=lambda number: DefinitionsNotFound(f"no metric definitions version {number}"),
    )
    return VersionDetail(
        _info(row, current=row.version == current.current_version),
        row.source,
        compiled_version(row),
    )


async def load_catalog(session: AsyncSession) -> Mapping[str, PublishedDefinitions]:
    """Every workspace's current definitions, compiled (each digest once per process). A
    stored version that no longer loads is logged and its workspace left out."""
    catalog: dict[str, PublishedDefinitions] = {}
    for row in await repository.current_versions(session):
        try:
            compiled = compiled_version(row)
        except DefinitionError as exc:
            logger.error(
                "stored metric definitions no longer load; the workspace is left out",
                extra={"workspace_id": row.workspace_id, "error": str(exc)},
            )
            continue
        catalog[row.workspace_id] = PublishedDefinitions(row.version, compiled)
    return catalog


async def definitions_in_force(session: AsyncSession, workspace_id: str) -> MetricDefinitions:
    """The workspace's current metric definitions (the reference ones when none)."""
    rows = _rows(workspace_id)
    current = await rows.head(session)
    row = None if current is None else await rows.version(session, current.current_version)
    return reference_definitions().definitions if row is None else compiled_version(row)


def compiled_version(row: MetricVersionRow) -> MetricDefinitions:
    """A stored version compiled, once per content digest and process."""
    found = _COMPILED.get(row.digest)
    if found is None:
        found = _COMPILED[row.digest] = load_metrics(
            f"{row.workspace_id} v{row.version}", text=row.source
        )
    return found


_COMPILED: dict[str, MetricDefinitions] = {}


def _rows(workspace_id: str) -> DefinitionRows[MetricSetRow, MetricVersionRow]:
    return DefinitionRows(MetricSetRow, MetricVersionRow, (workspace_id,))


def _info(row: MetricVersionRow, *, current: bool) -> VersionInfo:
    return VersionInfo(
        workspace_id=row.workspace_id,
        version=row.version,
        source_name=row.source_name,
        digest=row.digest,
        north_star=row.north_star,
        metric_count=row.metric_count,
        published_at=row.published_at,
        published_by=row.published_by,
        current=current,
    )
