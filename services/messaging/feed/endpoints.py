"""``/api/messaging/feed/{user_id}``: the in-app messages of one user of the product.

The product's backend polls it with the workspace's write key (HTTP Basic user, as for
the ingest API, or ``Authorization: Bearer <write key>``); the workspace comes from the
key, the user id is the product's own. The key is a server-side secret: browsers and apps
ask the product's backend, which asks Milepost.
"""

# No ``from __future__ import annotations``: FastAPI must see the dependency inside the
# parameters' ``Annotated`` at definition time (it is local to ``feed_router``).
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from services.messaging.feed import schemas, service
from shared.db.ranges import Int32
from shared.errors import Unauthorized
from shared.http_errors import ErrorOut
from shared.runtime import Resources
from shared.tenancy.service import (
    WRITE_KEY_CACHE_SECONDS,
    WriteKeyAuthenticator,
    write_key_in,
)


def feed_router(
    resources: Resources, *, key_cache_seconds: float = WRITE_KEY_CACHE_SECONDS
) -> APIRouter:
    """A revoked write key stops working within ``key_cache_seconds`` (as for ingest)."""
    sessions, clock = resources.sessions, resources.clock
    keys = WriteKeyAuthenticator(sessions, clock=clock, cache_ttl_seconds=key_cache_seconds)
    workspace = _workspace_of_key(keys)

    router = APIRouter(
        prefix="/api/messaging/feed",
        tags=["messaging: in-app feed"],
        responses={
            status.HTTP_401_UNAUTHORIZED: {"model": ErrorOut, "description": "No valid key"}
        },
    )

    @router.get("/{user_id}", summary="One user's in-app messages, newest first")
    async def read_feed(
        workspace_id: Annotated[str, Depends(workspace)],
        user_id: str,
        cursor: Annotated[
            Int32 | None, Query(ge=0, description="next_cursor of the last page")
        ] = None,
        unread_only: bool = False,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> schemas.FeedPageOut:
        async with sessions() as session:
            page = await service.read_feed(
                session,
                workspace_id,
                user_id,
                cursor=cursor,
                unread_only=unread_only,
                limit=limit,
            )
        return schemas.FeedPageOut(
            items=[schemas.FeedItemOut.of(i) for i in page.items],
            next_cursor=page.next_cursor,
            unread=page.unread,
        )

    @router.post("/{user_id}/read", summary="Mark items read (by seq, or all up to one)")
    async def mark_read(
        workspace_id: Annotated[str, Depends(workspace)], user_id: str, body: schemas.MarkReadIn
    ) -> schemas.MarkedOut:
        async with sessions() as session:
            marked = await service.mark_read(
                session, workspace_id, user_id, seqs=body.seqs, up_to=body.up_to, now=clock.now()
            )
            await session.commit()
        return schemas.MarkedOut(marked=marked)

    return router


def _workspace_of_key(keys: WriteKeyAuthenticator) -> Callable[[Request], Awaitable[str]]:
    """The dependency answering the workspace of the request's write key, else 401."""

    async def workspace(request: Request) -> str:
        write_key = write_key_in(request.headers.get("authorization", ""))
        workspace_id = await keys.workspace_for(write_key) if write_key else None
        if workspace_id is None:
            raise Unauthorized(
                "send the workspace write key (Basic or Bearer)",
                headers={"WWW-Authenticate": "Basic"},
            )
        return workspace_id

    return workspace
