"""Queries on published growth paths and their versions. Repositories flush, never commit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.node_engine.paths.models import PathRow, PathVersionRow

CHUNK = 200


async def flush(session: AsyncSession) -> None:
    """Write changes made to loaded rows."""
    await session.flush()


async def all_paths(session: AsyncSession) -> Sequence[PathRow]:
    return (await session.scalars(select(PathRow))).all()


VersionKey = tuple[str, str, int]
"""(workspace id, path id, version)."""


@dataclass(frozen=True, slots=True)
class VersionHeader:
    """A version without its source text."""

    key: VersionKey
    digest: str
    migration: str
    node_map: Mapping[str, str]


async def version_headers(session: AsyncSession) -> list[VersionHeader]:
    """Every version of every path, oldest first per path."""
    query = select(
        PathVersionRow.workspace_id,
        PathVersionRow.path_id,
        PathVersionRow.version,
        PathVersionRow.digest,
        PathVersionRow.migration,
        PathVersionRow.node_map,
    ).order_by(PathVersionRow.workspace_id, PathVersionRow.path_id, PathVersionRow.version)
    return [
        VersionHeader((workspace_id, path_id, number), digest, migration, dict(node_map))
        for workspace_id, path_id, number, digest, migration, node_map in await session.execute(
            query
        )
    ]


async def sources_of(session: AsyncSession, keys: Iterable[VersionKey]) -> dict[VersionKey, str]:
    """The source text of the given versions."""
    found: dict[VersionKey, str] = {}
    wanted = list(dict.fromkeys(keys))
    columns = tuple_(PathVersionRow.workspace_id, PathVersionRow.path_id, PathVersionRow.version)
    for start in range(0, len(wanted), CHUNK):
        query = select(
            PathVersionRow.workspace_id,
            PathVersionRow.path_id,
            PathVersionRow.version,
            PathVersionRow.source,
        ).where(columns.in_(wanted[start : start + CHUNK]))
        for workspace_id, path_id, number, source in await session.execute(query):
            found[(workspace_id, path_id, number)] = source
    return found
