"""The HTTP catalog of versioned definitions (growth paths, playbooks, a workspace's metric
definitions): one router factory serving a kind's list, publish, validate, show and version
routes, given a :class:`DefinitionApi` that says what is kind-specific.

Every route takes the request's :data:`~services.admin_api.Session` (committed when the
route returns) and the workspace its path names (:data:`~services.admin_api.WorkspaceId`,
404 when unknown); publishing records :data:`~services.admin_api.PublishedBy`. Errors
answer through the one handler of :mod:`shared.http_errors`. A kind whose definitions have
ids (``key``) gets ``/{key}`` and ``/{key}/versions/{version}``; a kind with one
definition per workspace gets ``/{version}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from inspect import Parameter, Signature
from typing import Any, Generic, Protocol, TypeVar

from fastapi import APIRouter, status
from fastapi.params import Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from services.admin_api import (
    ERROR_RESPONSES,
    FILE_ERROR_RESPONSES,
    SAME_CONTENT_RESPONSE,
    PublishedBy,
    Session,
    SourceIn,
    WorkspaceId,
)
from shared.clock import Clock

Body = TypeVar("Body", bound=SourceIn)
Run = TypeVar("Run")
Info = TypeVar("Info")
Info_co = TypeVar("Info_co", covariant=True)
Responses = dict[int | str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Route(Generic[Run]):
    """One route of a kind: its name (which begins its OpenAPI operation id), summary,
    answer's model and what it runs."""

    name: str
    summary: str
    answer: type[BaseModel]
    run: Run


@dataclass(frozen=True, slots=True)
class DefinitionApi(Generic[Body]):
    """What one kind of versioned definition gives the catalog router.

    The routes' ``run`` receive, in order: ``page`` the session, the workspace's name and
    id, the cursor and the limit; ``publish`` the session, the workspace id, the request
    body and who publishes; ``validate`` the body (it raises
    :class:`~shared.definitions.DefinitionError` for an invalid file); ``detail`` the
    session, the workspace's name and id and the definition's id (``key``); ``version``
    the session, the workspace id, the definition's id (``None`` without ``key``) and the
    version number."""

    prefix: str
    tag: str
    key: str | None
    """The path parameter naming one definition; ``None``: one per workspace."""
    body: type[Body]
    """What publishing takes; validating takes a :class:`SourceIn` unless ``validate_body``."""
    cursor: Any
    """The list's ``cursor`` query parameter (its annotation, with its constraints)."""
    limit: Any
    version_number: Any
    """The ``version`` path parameter's annotation."""
    page: Route[Callable[[AsyncSession, str, str, Any, int], Awaitable[BaseModel]]]
    publish: Route[Callable[[AsyncSession, str, Body, str], Awaitable[BaseModel]]]
    validate: Route[Callable[[SourceIn], BaseModel]]
    version: Route[Callable[[AsyncSession, str, str | None, int], Awaitable[BaseModel]]]
    detail: Route[Callable[[AsyncSession, str, str, str], Awaitable[BaseModel]]] | None = None
    validate_body: type[SourceIn] = SourceIn
    file_errors: Responses | None = None
    """The 422 answer of routes taking a file (default: the admin API's)."""


class PublishFile(Protocol[Info_co]):
    """A kind's service publishing a file as its next version."""

    def __call__(
        self,
        session: AsyncSession,
        workspace_id: str,
        source_name: str,
        text: str,
        *,
        published_by: str,
        clock: Clock,
    ) -> Awaitable[Info_co]: ...


def publishing(
    publish: PublishFile[Info], answer: Callable[[Info], BaseModel], clock: Clock
) -> Callable[[AsyncSession, str, SourceIn, str], Awaitable[BaseModel]]:
    """The publish route's ``run`` for a kind whose publishing takes only the file:
    ``publish`` it and ``answer`` what it published."""

    async def run(
        session: AsyncSession, workspace_id: str, body: SourceIn, published_by: str
    ) -> BaseModel:
        info = await publish(
            session,
            workspace_id,
            body.source_name,
            body.source,
            published_by=published_by,
            clock=clock,
        )
        return answer(info)

    return run


def definition_router(api: DefinitionApi[Any], *, dependencies: Sequence[Depends]) -> APIRouter:
    """The kind's catalog routes under ``api.prefix``, behind ``dependencies`` (the admin
    token)."""
    router = APIRouter(
        prefix=api.prefix, tags=[api.tag], dependencies=dependencies, responses=ERROR_RESPONSES
    )
    file_errors = api.file_errors or FILE_ERROR_RESPONSES
    _add(router, "", api.page, _page_endpoint(api), responses={})
    _add(
        router,
        "",
        api.publish,
        _publish_endpoint(api),
        responses={**file_errors, **SAME_CONTENT_RESPONSE},
        method="POST",
        status_code=status.HTTP_201_CREATED,
    )
    _add(
        router,
        "/validate",
        api.validate,
        _validate_endpoint(api),
        responses=file_errors,
        method="POST",
    )
    if api.detail is not None and api.key is not None:
        _add(
            router,
            f"/{{{api.key}}}",
            api.detail,
            _detail_endpoint(api.detail, api.key),
            {},
        )
    versions = "/{version}" if api.key is None else f"/{{{api.key}}}/versions/{{version}}"
    _add(router, versions, api.version, _version_endpoint(api), responses={})
    return router


def _add(
    router: APIRouter,
    path: str,
    route: Route[Any],
    endpoint: Callable[..., Awaitable[BaseModel]],
    responses: Responses,
    *,
    method: str = "GET",
    status_code: int = status.HTTP_200_OK,
) -> None:
    endpoint.__name__ = route.name
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        name=route.name,
        summary=route.summary,
        response_model=route.answer,
        status_code=status_code,
        responses=responses,
    )


def _signed(
    run: Callable[..., Awaitable[BaseModel]], *parameters: tuple[str, Any] | tuple[str, Any, Any]
) -> Callable[..., Awaitable[BaseModel]]:
    """``run``, declaring to FastAPI the ``parameters`` it takes by name (name, annotation
    and optionally default): the kind decides some annotations and the id's name."""
    run.__signature__ = Signature(  # type: ignore[attr-defined]
        [
            Parameter(
                name,
                Parameter.KEYWORD_ONLY,
                annotation=kind,
                default=rest[0] if rest else Parameter.empty,
            )
            for name, kind, *rest in parameters
        ]
    )
    return run


def _page_endpoint(api: DefinitionApi[Any]) -> Callable[..., Awaitable[BaseModel]]:
    async def run(
        workspace: str, cursor: Any, limit: int, session: AsyncSession, workspace_id: str
    ) -> BaseModel:
        return await api.page.run(session, workspace, workspace_id, cursor, limit)

    return _signed(
        run,
        ("workspace", str),
        ("cursor", api.cursor, None),
        ("limit", api.limit, 50),
        ("session", Session),
        ("workspace_id", WorkspaceId),
    )


def _publish_endpoint(api: DefinitionApi[Any]) -> Callable[..., Awaitable[BaseModel]]:
    async def run(
        workspace: str, body: SourceIn, session: AsyncSession, workspace_id: str, published_by: str
    ) -> BaseModel:
        return await api.publish.run(session, workspace_id, body, published_by)

    return _signed(
        run,
        ("workspace", str),
        ("body", api.body),
        ("session", Session),
        ("workspace_id", WorkspaceId),
        ("published_by", PublishedBy),
    )


def _validate_endpoint(api: DefinitionApi[Any]) -> Callable[..., Awaitable[BaseModel]]:
    async def run(workspace: str, body: SourceIn, _workspace_id: str) -> BaseModel:
        return api.validate.run(body)

    return _signed(
        run, ("workspace", str), ("body", api.validate_body), ("_workspace_id", WorkspaceId)
    )


def _detail_endpoint(
    detail: Route[Callable[[AsyncSession, str, str, str], Awaitable[BaseModel]]], key: str
) -> Callable[..., Awaitable[BaseModel]]:
    async def run(
        workspace: str, session: AsyncSession, workspace_id: str, **path: str
    ) -> BaseModel:
        return await detail.run(session, workspace, workspace_id, path[key])

    return _signed(
        run,
        ("workspace", str),
        (key, str),
        ("session", Session),
        ("workspace_id", WorkspaceId),
    )


def _version_endpoint(api: DefinitionApi[Any]) -> Callable[..., Awaitable[BaseModel]]:
    key = api.key

    async def run(
        workspace: str, version: int, session: AsyncSession, workspace_id: str, **path: str
    ) -> BaseModel:
        return await api.version.run(session, workspace_id, path.get(key or ""), version)

    keyed: tuple[tuple[str, Any], ...] = () if key is None else ((key, str),)
    return _signed(
        run,
        ("workspace", str),
        *keyed,
        ("version", api.version_number),
        ("session", Session),
        ("workspace_id", WorkspaceId),
    )
