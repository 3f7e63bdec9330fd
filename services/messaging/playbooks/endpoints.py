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
from sqlalchemy.ext.asyncio import AsyncSession

from services.admin_api import ERROR_RESPONSES, SourceIn
from services.definition_router import DefinitionApi, Route, definition_router, publishing
from services.messaging.playbooks import schemas, service
from services.messaging.playbooks.service import PlaybookInfo, VersionInfo
from shared.clock import Clock
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
    """The catalog routes of playbooks."""
    return definition_router(playbooks_api(resources.clock), dependencies=dependencies)


def playbooks_api(clock: Clock) -> DefinitionApi[SourceIn]:
    """Playbooks in the definition catalog."""
    return DefinitionApi(
        prefix="/api/messaging/workspaces/{workspace}/playbooks",
        tag="messaging: playbooks",
        key="playbook_id",
        body=SourceIn,
        cursor=Annotated[
            str | None, Query(max_length=64, description="next_cursor of the previous page")
        ],
        limit=Annotated[int, Query(ge=1, le=service.MAX_PAGE)],
        version_number=Int32,
        page=Route(
            "list_playbooks",
            "The workspace's playbooks, a page at a time",
            schemas.PlaybookPage,
            _page,
        ),
        publish=Route(
            "publish",
            "Publish a new version of a playbook",
            schemas.PlaybookVersionOut,
            publishing(service.publish, _version_out, clock),
        ),
        validate=Route(
            "validate",
            "Check a playbook file without publishing it",
            schemas.PlaybookValidOut,
            _validate,
        ),
        detail=Route(
            "get_playbook",
            "A playbook: its current version and every version",
            schemas.PlaybookDetailOut,
            _detail,
        ),
        version=Route(
            "get_version",
            "One version: its source, rules, steps and templates",
            schemas.PlaybookVersionDetailOut,
            _version,
        ),
        file_errors=_FILE_ERRORS,
    )


async def _page(
    session: AsyncSession, workspace: str, workspace_id: str, cursor: str | None, limit: int
) -> schemas.PlaybookPage:
    items, next_cursor = await service.list_playbooks(
        session, workspace_id, cursor=cursor, limit=limit
    )
    return schemas.PlaybookPage(
        items=[_playbook_out(workspace, item) for item in items], next_cursor=next_cursor
    )


def _validate(body: SourceIn) -> schemas.PlaybookValidOut:
    playbook = service.read_playbook(body.source_name, body.source)
    return schemas.PlaybookValidOut(
        playbook_id=playbook.id, counts=schemas.PlaybookCounts.of(playbook)
    )


async def _detail(
    session: AsyncSession, workspace: str, workspace_id: str, playbook_id: str
) -> schemas.PlaybookDetailOut:
    info, versions = await service.get_playbook(session, workspace_id, playbook_id)
    return schemas.PlaybookDetailOut(
        **_playbook_out(workspace, info).model_dump(),
        versions=[_version_out(v) for v in versions],
    )


async def _version(
    session: AsyncSession, workspace_id: str, playbook_id: str | None, version: int
) -> schemas.PlaybookVersionDetailOut:
    assert playbook_id is not None
    detail = await service.show(session, workspace_id, playbook_id, version)
    return schemas.PlaybookVersionDetailOut(
        **_version_out(detail.info).model_dump(),
        current=detail.is_current,
        source=detail.source,
        counts=schemas.PlaybookCounts.of(detail.playbook),
    )


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
