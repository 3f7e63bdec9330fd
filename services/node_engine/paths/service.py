"""Growth-path versions: publish, list, show, pause and resume, and the catalog the engine runs.

A published version is immutable. Publishing validates the file (a
:class:`~shared.definitions.DefinitionError` names file, line and field), refuses content
identical to the current version, checks the node map, and makes version N+1 current. The
version's migration policy says how accounts on older versions move to it: ``pin`` (they
stay), ``migrate`` (to the mapped or same node, see :mod:`services.node_engine.core.migration`)
or ``restart`` (from the first stage).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Literal, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from services.definitions import MAX_PAGE as MAX_PAGE
from services.definitions import KeyedDefinitions, publish_version, required_head
from services.node_engine.errors import PathNotFound, PathRejected, PathUnchanged
from services.node_engine.paths import repository
from services.node_engine.paths.compiled import GrowthPath, compile_path
from services.node_engine.paths.files import GrowthPathFile
from services.node_engine.paths.models import PathRow, PathVersionRow
from shared.clock import Clock
from shared.definitions import DefinitionError, definition_digest, load_definition
from shared.tenancy.admin_tokens import OPERATOR

logger = logging.getLogger(__name__)

MigrationPolicy = Literal["pin", "migrate", "restart"]
MIGRATION_POLICIES: tuple[MigrationPolicy, ...] = get_args(MigrationPolicy)
REFERENCE_PATHS = Path(__file__).parent / "reference"
"""The reference growth paths shipped with Milepost (docs/growth-paths.md explains them)."""


@dataclass(frozen=True, slots=True)
class PublishedPath:
    """One path as the running engine sees it."""

    workspace_id: str
    path_id: str
    current: GrowthPath
    paused: bool
    migration: MigrationPolicy
    """The current version's policy for accounts on older versions."""
    node_map: Mapping[str, str]
    versions: Mapping[int, GrowthPath]
    """Every published version, compiled."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    path_id: str
    version: int
    name: str
    source_name: str
    digest: str
    migration: MigrationPolicy
    node_map: Mapping[str, str]
    published_at: datetime
    published_by: str


@dataclass(frozen=True, slots=True)
class PathInfo:
    """A path with its current version."""

    workspace_id: str
    path_id: str
    paused: bool
    updated_at: datetime
    current: VersionInfo


@dataclass(frozen=True, slots=True)
class VersionDetail:
    info: VersionInfo
    source: str
    path: GrowthPath
    is_current: bool


def read_path(source_name: str, text: str) -> GrowthPathFile:
    """Validate a growth-path file; raises :class:`DefinitionError` naming line and field."""
    return load_definition(source_name, GrowthPathFile, text=text, what="the growth path")


def compile_source(source_name: str, text: str, *, version: int) -> GrowthPath:
    """Validate and compile a growth-path file as ``version``."""
    return compile_path(read_path(source_name, text), version=version)


async def publish(
    session: AsyncSession,
    workspace_id: str,
    source_name: str,
    text: str,
    *,
    migration: MigrationPolicy = "pin",
    node_map: Mapping[str, str] | None = None,
    published_by: str = OPERATOR,
    clock: Clock,
) -> VersionInfo:
    """Create version N+1 of the file's path, published by ``published_by``, and make it
    current.

    Raises :class:`DefinitionError` for an invalid file, :class:`PathUnchanged` for content
    identical to the current version, and :class:`PathRejected` for an unknown policy or a
    bad node map (old ids must exist in an earlier version, new ids in this one; only
    ``migrate`` uses one).
    """
    _check_policy(migration)
    file = read_path(source_name, text)
    digest = definition_digest(text, source=source_name)
    mapping = dict(node_map or {})
    rows = _PATHS.rows(workspace_id, file.id)
    previous = await rows.every_version(session) if mapping else ()

    def new_version(number: int, now: datetime) -> PathVersionRow:
        _check_node_map(mapping, migration, previous, compile_path(file, version=number))
        return PathVersionRow(
            workspace_id=workspace_id,
            path_id=file.id,
            version=number,
            name=file.name,
            source=text,
            source_name=source_name,
            digest=digest,
            migration=migration,
            node_map=mapping,
            published_at=now,
        )

    version_row = await publish_version(
        session,
        rows,
        digest,
        new_head=lambda number, now: PathRow(
            workspace_id=workspace_id,
            path_id=file.id,
            current_version=number,
            paused=False,
            updated_at=now,
        ),
        new_version=new_version,
        unchanged=PathUnchanged,
        version_name=lambda number: f"{file.id} v{number}",
        published_by=published_by,
        clock=clock,
    )
    return _info(version_row)


def _check_policy(migration: str) -> None:
    if migration not in MIGRATION_POLICIES:
        raise PathRejected(
            f"unknown migration policy {migration!r}; one of {', '.join(MIGRATION_POLICIES)}",
            field="migration",
        )


def _check_node_map(
    node_map: Mapping[str, str],
    migration: MigrationPolicy,
    previous: Sequence[PathVersionRow],
    new: GrowthPath,
) -> None:
    if not node_map:
        return
    if migration != "migrate":
        raise PathRejected(
            f"a node map applies only with the migrate policy (not {migration})", field="node_map"
        )
    if not previous:
        raise PathRejected("the first version has no earlier nodes to map", field="node_map")
    old_ids: set[str] = set()
    for row in previous:
        old = read_path(f"{row.path_id} v{row.version}", row.source)
        old_ids.update(stage.id for stage in old.stages)
        old_ids.update(node.id for stage in old.stages for node in stage.nodes)
    new_ids = set(new.stages_by_id) | set(new.nodes_by_id)
    for old_id, new_id in node_map.items():
        if old_id not in old_ids:
            raise PathRejected(
                f"{old_id!r} is no stage or node of an earlier version", field=f"node_map.{old_id}"
            )
        if new_id not in new_ids:
            raise PathRejected(
                f"{new_id!r} is no stage or node of the new version", field=f"node_map.{old_id}"
            )


async def list_paths(
    session: AsyncSession, workspace_id: str, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[PathInfo], str | None]:
    """A page of the workspace's paths by id, and the cursor of the next page (or None)."""
    rows, next_cursor = await _PATHS.page(session, workspace_id, cursor=cursor, limit=limit)
    return [_path_info(path_row, version_row) for path_row, version_row in rows], next_cursor


async def get_path(
    session: AsyncSession, workspace_id: str, path_id: str
) -> tuple[PathInfo, tuple[VersionInfo, ...]]:
    """The path with its current version, and every version, oldest first."""
    row, current, versions = await _PATHS.history(session, workspace_id, path_id)
    return _path_info(row, current), tuple(_info(v) for v in versions)


async def show(
    session: AsyncSession, workspace_id: str, path_id: str, version: int | None = None
) -> VersionDetail:
    """One version (default: the current one) with its source and compiled form."""
    row, found = await _PATHS.version(session, workspace_id, path_id, version)
    return VersionDetail(
        _info(found),
        found.source,
        _COMPILED.get(found.digest, found.version, lambda: _compile_row(found)),
        is_current=found.version == row.current_version,
    )


async def set_paused(
    session: AsyncSession, workspace_id: str, path_id: str, *, paused: bool, clock: Clock
) -> PathInfo:
    """Pause (accounts keep their data but do not move, nothing fires) or resume a path."""
    rows = _PATHS.rows(workspace_id, path_id)
    row = await required_head(session, rows, _PATHS.missing(path_id))
    if row.paused != paused:
        row.paused = paused
        row.updated_at = clock.now()
        await repository.flush(session)
    current = await rows.version(session, row.current_version)
    assert current is not None
    return _path_info(row, current)


async def load_catalog(session: AsyncSession) -> Mapping[str, tuple[PublishedPath, ...]]:
    """Every published path by workspace id, compiled; versions already compiled are reused.

    A path with a stored version that no longer loads is left out and logged, so one bad
    path does not stop the others."""
    rows = {(row.workspace_id, row.path_id): row for row in await repository.all_paths(session)}
    headers = await repository.version_headers(session)
    missing = [h.key for h in headers if (h.digest, h.key[2]) not in _COMPILED]
    sources = await repository.sources_of(session, missing) if missing else {}
    versions: dict[tuple[str, str], dict[int, tuple[GrowthPath, repository.VersionHeader]]] = {}
    broken: set[tuple[str, str]] = set()
    for header in headers:
        workspace_id, path_id, number = header.key
        try:
            compiled = _COMPILED.get(
                header.digest,
                number,
                partial(
                    compile_source,
                    f"{path_id} v{number}",
                    sources.get(header.key, ""),
                    version=number,
                ),
            )
        except DefinitionError as exc:
            logger.error(
                "a stored growth-path version no longer loads; the path is left out",
                extra={"workspace_id": workspace_id, "path_id": path_id, "error": str(exc)},
            )
            broken.add((workspace_id, path_id))
            continue
        versions.setdefault((workspace_id, path_id), {})[number] = (compiled, header)
    catalog: dict[str, list[PublishedPath]] = {}
    for key, row in sorted(rows.items()):
        found = versions.get(key, {})
        if key in broken or row.current_version not in found:
            continue
        current, header = found[row.current_version]
        catalog.setdefault(row.workspace_id, []).append(
            PublishedPath(
                workspace_id=row.workspace_id,
                path_id=row.path_id,
                current=current,
                paused=row.paused,
                migration=_policy(header.migration),
                node_map=MappingProxyType(dict(header.node_map)),
                versions=MappingProxyType({n: path for n, (path, _) in found.items()}),
            )
        )
    return {workspace_id: tuple(paths) for workspace_id, paths in catalog.items()}


class _CompiledVersions:
    """Compiled versions by content digest and number, least recently used dropped first.
    A version never changes, so the engine compiles each one once per process."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[tuple[str, int], GrowthPath] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def get(self, digest: str, version: int, build: Callable[[], GrowthPath]) -> GrowthPath:
        key = (digest, version)
        found = self.entries.get(key)
        if found is None:
            found = self.entries[key] = build()
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        else:
            self.entries.move_to_end(key)
        return found


_COMPILED = _CompiledVersions(1024)


def _compile_row(row: PathVersionRow) -> GrowthPath:
    return compile_source(f"{row.path_id} v{row.version}", row.source, version=row.version)


_PATHS = KeyedDefinitions(PathRow, PathVersionRow, PathNotFound, "growth path", "path")


def _policy(value: str) -> MigrationPolicy:
    for policy in MIGRATION_POLICIES:
        if policy == value:
            return policy
    raise ValueError(f"unknown migration policy {value!r}")


def _info(row: PathVersionRow) -> VersionInfo:
    return VersionInfo(
        path_id=row.path_id,
        version=row.version,
        name=row.name,
        source_name=row.source_name,
        digest=row.digest,
        migration=_policy(row.migration),
        node_map=MappingProxyType(dict(row.node_map)),
        published_at=row.published_at,
        published_by=row.published_by,
    )


def _path_info(row: PathRow, current: PathVersionRow) -> PathInfo:
    return PathInfo(row.workspace_id, row.path_id, row.paused, row.updated_at, _info(current))
