"""``/api/messaging/workspaces/{workspace}/playbooks``: playbooks and their versions.

Errors answer ``{"detail": {"field", "message", "problems"}}``: 401 without the admin token
(when one is set), 404 for an unknown workspace, playbook or version, 409 for a file
identical to the current version, 422 for an invalid file (each problem with its line,
column and field).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.params import Depends

from services.admin_api import (
    ERROR_RESPONSES,
    SAME_CONTENT_RESPONSE,
    PublishedBy,
    Session,
    SourceIn,
    WorkspaceId,
)
from services.messaging.playbooks import schemas, service
from services.messaging.playbooks.service import PlaybookInfo, VersionInfo
from shared.db.ranges import Int32
from shared.http_errors import ErrorOut
from shared.runtime import Resources

_FILE_ERRORS: dict[int | str, dict[str, object]] = {
    **ERROR_RESPONSES,
    status.HTTP_422_UNPROCESSABLE_CONTENT: {
        "model": ErrorOut,
        "description": "An invalid file: each problem with its line and field",
    },
}


def playbooks_router(resources: Resources, *, dependencies: list[Depends]) -> APIRouter:
    clock = resources.clock
    router = APIRouter(
        prefix="/api/messaging/workspaces/{workspace}/playbooks",
        tags=["messaging: playbooks"],
        dependencies=dependencies,
        responses=ERROR_RESPONSES,
    )

    @router.get("", summary="The workspace's playbooks, a page at a time")
    async def list_playbooks(
        workspace: str,
        cursor: Annotated[
            str | None, Query(max_length=64, description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.PlaybookPage:
        items, next_cursor = await service.list_playbooks(
            session, workspace_id, cursor=cursor, limit=limit
        )
        return schemas.PlaybookPage(
            items=[_playbook_out(workspace, item) for item in items], next_cursor=next_cursor
        )

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        summary="Publish a new version of a playbook",
        responses={**_FILE_ERRORS, **SAME_CONTENT_RESPONSE},
    )
    async def publish(
        workspace: str,
        body: SourceIn,
        session: Session,
        workspace_id: WorkspaceId,
        published_by: PublishedBy,
    ) -> schemas.PlaybookVersionOut:
        info = await service.publish(
            session,
            workspace_id,
            body.source_name,
            body.source,
            published_by=published_by,
            clock=clock,
        )
        return _version_out(info)

    @router.post(
        "/validate",
        summary="Check a playbook file without publishing it",
        responses=_FILE_ERRORS,
    )
    async def validate(
        workspace: str, body: SourceIn, _workspace_id: WorkspaceId
    ) -> schemas.PlaybookValidOut:
        playbook = service.read_playbook(body.source_name, body.source)
        return schemas.PlaybookValidOut(
            playbook_id=playbook.id, counts=schemas.PlaybookCounts.of(playbook)
        )

    @router.get("/{playbook_id}", summary="A playbook: its current version and every version")
    async def get_playbook(
        workspace: str, playbook_id: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.PlaybookDetailOut:
        info, versions = await service.get_playbook(session, workspace_id, playbook_id)
        return schemas.PlaybookDetailOut(
            **_playbook_out(workspace, info).model_dump(),
            versions=[_version_out(v) for v in versions],
        )

    @router.get(
        "/{playbook_id}/versions/{version}",
        summary="One version: its source, rules, steps and templates",
    )
    async def get_version(
        workspace: str,
        playbook_id: str,
        version: Int32,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.PlaybookVersionDetailOut:
        detail = await service.show(session, workspace_id, playbook_id, version)
        return schemas.PlaybookVersionDetailOut(
            **_version_out(detail.info).model_dump(),
            current=detail.is_current,
            source=detail.source,
            counts=schemas.PlaybookCounts.of(detail.playbook),
        )

    return router


def _playbook_out(workspace: str, info: PlaybookInfo) -> schemas.PlaybookOut:
    return schemas.PlaybookOut(
        workspace=workspace,
        playbook_id=info.playbook_id,
        name=info.current.name,
        current_version=info.current.version,
        updated_at=info.updated_at,
    )


def _version_out(info: VersionInfo) -> schemas.PlaybookVersionOut:
    return schemas.PlaybookVersionOut(
        playbook_id=info.playbook_id,
        version=info.version,
        name=info.name,
        source_name=info.source_name,
        digest=info.digest,
        published_at=info.published_at,
        published_by=info.published_by,
    )
