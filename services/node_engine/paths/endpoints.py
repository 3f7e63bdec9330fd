"""``/api/engine/workspaces/{workspace}/paths``: growth paths and their versions.

Every route answers errors as ``{"detail": {"field", "message", "problems"}}``: 401 without
a valid admin token, 403 with another workspace's, 404 for an unknown workspace, path or version, 409 for a
file identical to the current version, 422 for an invalid file (each problem with its
line, column and field) or a bad migration policy or node map.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.params import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from services.admin_api import Session, SourceIn, WorkspaceId
from services.admin_api import admin_dependencies as admin_token_required
from services.definition_router import DefinitionApi, Route, definition_router
from services.node_engine.paths import schemas, service
from services.node_engine.paths.service import PathInfo, VersionInfo
from services.node_engine.settings import EngineSettings
from shared.clock import Clock
from shared.db.ranges import Int32
from shared.runtime import Resources


def admin_dependencies(settings: EngineSettings, resources: Resources) -> list[Depends]:
    """Admin-token authentication for the engine's admin API (``MILEPOST_ENGINE_ADMIN_TOKEN``
    or a token from ``milepost admin-token create``); closed without one."""
    return admin_token_required(
        resources.sessions, settings.admin_token, variable="MILEPOST_ENGINE_ADMIN_TOKEN"
    )


def paths_router(settings: EngineSettings, resources: Resources) -> APIRouter:
    """The catalog routes of growth paths, and pausing and resuming one."""
    clock = resources.clock
    router = definition_router(
        paths_api(clock), dependencies=admin_dependencies(settings, resources)
    )

    async def set_paused(
        workspace: str, path_id: str, session: AsyncSession, workspace_id: str, *, paused: bool
    ) -> schemas.PathOut:
        info = await service.set_paused(session, workspace_id, path_id, paused=paused, clock=clock)
        return _path_out(workspace, info)

    @router.post(
        "/{path_id}/pause",
        summary="Pause a path: data is still counted, accounts do not move, nothing fires",
    )
    async def pause(
        workspace: str, path_id: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.PathOut:
        return await set_paused(workspace, path_id, session, workspace_id, paused=True)

    @router.post("/{path_id}/resume", summary="Resume a paused path")
    async def resume(
        workspace: str, path_id: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.PathOut:
        return await set_paused(workspace, path_id, session, workspace_id, paused=False)

    return router


def paths_api(clock: Clock) -> DefinitionApi[schemas.PublishIn]:
    """Growth paths in the definition catalog; publishing takes a migration policy and a
    node map beside the file."""

    async def publish(
        session: AsyncSession, workspace_id: str, body: schemas.PublishIn, published_by: str
    ) -> schemas.VersionOut:
        info = await service.publish(
            session,
            workspace_id,
            body.source_name,
            body.source,
            migration=body.migration,
            node_map=body.node_map,
            published_by=published_by,
            clock=clock,
        )
        return _version_out(info)

    return DefinitionApi(
        prefix="/api/engine/workspaces/{workspace}/paths",
        tag="engine: paths",
        key="path_id",
        body=schemas.PublishIn,
        cursor=Annotated[
            str | None, Query(max_length=64, description="next_cursor of the previous page")
        ],
        limit=Annotated[int, Query(ge=1, le=service.MAX_PAGE)],
        version_number=Int32,
        page=Route(
            "list_paths", "The workspace's growth paths, a page at a time", schemas.PathPage, _page
        ),
        publish=Route(
            "publish", "Publish a new version of a growth path", schemas.VersionOut, publish
        ),
        validate=Route(
            "validate",
            "Check a growth-path file without publishing it",
            schemas.ValidOut,
            _validate,
        ),
        detail=Route(
            "get_path",
            "A path: its current version, state and every version",
            schemas.PathDetailOut,
            _detail,
        ),
        version=Route(
            "get_version",
            "One version: its source and what the engine runs (stages, nodes, tiers)",
            schemas.VersionDetailOut,
            _version,
        ),
    )


async def _page(
    session: AsyncSession, workspace: str, workspace_id: str, cursor: str | None, limit: int
) -> schemas.PathPage:
    items, next_cursor = await service.list_paths(session, workspace_id, cursor=cursor, limit=limit)
    return schemas.PathPage(
        items=[_path_out(workspace, item) for item in items], next_cursor=next_cursor
    )


def _validate(body: SourceIn) -> schemas.ValidOut:
    path = service.compile_source(body.source_name, body.source, version=0)
    return schemas.ValidOut(summary=schemas.SummaryOut.from_path(path))


async def _detail(
    session: AsyncSession, workspace: str, workspace_id: str, path_id: str
) -> schemas.PathDetailOut:
    info, versions = await service.get_path(session, workspace_id, path_id)
    return schemas.PathDetailOut(
        **_path_out(workspace, info).model_dump(),
        versions=[_version_out(v) for v in versions],
    )


async def _version(
    session: AsyncSession, workspace_id: str, path_id: str | None, version: int
) -> schemas.VersionDetailOut:
    assert path_id is not None
    detail = await service.show(session, workspace_id, path_id, version)
    return schemas.VersionDetailOut(
        **_version_out(detail.info).model_dump(),
        current=detail.is_current,
        source=detail.source,
        summary=schemas.SummaryOut.from_path(detail.path),
    )


def _path_out(workspace: str, info: PathInfo) -> schemas.PathOut:
    return schemas.PathOut(
        workspace=workspace,
        path_id=info.path_id,
        name=info.current.name,
        current_version=info.current.version,
        paused=info.paused,
        updated_at=info.updated_at,
    )


def _version_out(info: VersionInfo) -> schemas.VersionOut:
    return schemas.VersionOut(
        path_id=info.path_id,
        version=info.version,
        name=info.name,
        source_name=info.source_name,
        digest=info.digest,
        migration=info.migration,
        node_map=dict(info.node_map),
        published_at=info.published_at,
        published_by=info.published_by,
    )
