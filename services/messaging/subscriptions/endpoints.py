"""``/api/messaging/workspaces/{workspace}/subscriptions``: marketing systems register a
URL and filters, and receive matching triggers as Standard Webhooks; ``/replay`` sends a
time range again. Admin token. Errors answer ``{"detail": {"field", "message",
"problems"}}``: 404 unknown subscription, 422 a URL the outbound guard refuses, a bad
range or a range too large."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from fastapi.params import Depends

from services.admin_api import Session, WorkspaceId
from services.messaging.channels.guard import UrlGuard
from services.messaging.deliveries.endpoints import ERRORS, MAX_PAGE
from services.messaging.subscriptions import repository, schemas, service
from shared.clock import Clock
from shared.runtime import Resources


def subscriptions_router(
    resources: Resources, *, dependencies: list[Depends], guard: UrlGuard
) -> APIRouter:
    """Registers, reads, changes and deletes subscriptions, and replays a time range."""
    router = APIRouter(
        prefix="/api/messaging/workspaces/{workspace}/subscriptions",
        tags=["messaging: subscriptions"],
        dependencies=dependencies,
        responses=ERRORS,
    )
    _create_route(router, resources.clock, guard)
    _read_routes(router)
    _change_routes(router, resources.clock, guard)
    _replay_route(router, resources.clock)
    return router


def _create_route(router: APIRouter, clock: Clock, guard: UrlGuard) -> None:
    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        summary="Register a URL for the workspace's triggers matching the filters",
    )
    async def create(
        workspace: str, body: schemas.SubscriptionIn, session: Session, workspace_id: WorkspaceId
    ) -> schemas.SubscriptionCreated:
        row = await service.create_subscription(
            session,
            workspace_id,
            url=body.url,
            filters=service.Filters(
                tuple(k.value for k in body.kinds),
                tuple(body.paths),
                tuple(body.nodes),
                tuple(r.value for r in body.roles),
            ),
            description=body.description,
            guard=guard,
            now=clock.now(),
        )
        return schemas.SubscriptionCreated(
            **schemas.SubscriptionOut.of(row).model_dump(), secret=row.secret
        )


def _read_routes(router: APIRouter) -> None:
    @router.get("", summary="The workspace's subscriptions, by id")
    async def list_subscriptions(
        workspace: str,
        cursor: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.SubscriptionPageOut:
        rows = await repository.page(session, workspace_id, after=cursor, limit=limit + 1)
        more = len(rows) > limit
        return schemas.SubscriptionPageOut(
            items=[schemas.SubscriptionOut.of(r) for r in rows[:limit]],
            next_cursor=rows[limit - 1].subscription_id if more else None,
        )

    @router.get("/{subscription_id}", summary="One subscription (without its secret)")
    async def get(
        workspace: str, subscription_id: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.SubscriptionOut:
        row = await service.get_subscription(session, workspace_id, subscription_id)
        return schemas.SubscriptionOut.of(row)


def _change_routes(router: APIRouter, clock: Clock, guard: UrlGuard) -> None:
    @router.patch("/{subscription_id}", summary="Change the URL, filters, or pause it")
    async def update(
        workspace: str,
        subscription_id: str,
        body: schemas.SubscriptionUpdate,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.SubscriptionOut:
        changes = {
            name: [getattr(v, "value", v) for v in value] if isinstance(value, list) else value
            for name, value in body.model_dump(exclude_unset=True).items()
        }
        row = await service.update_subscription(
            session,
            workspace_id,
            subscription_id,
            changes=changes,
            guard=guard,
            now=clock.now(),
        )
        return schemas.SubscriptionOut.of(row)

    @router.delete(
        "/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete it"
    )
    async def delete(
        workspace: str, subscription_id: str, session: Session, workspace_id: WorkspaceId
    ) -> None:
        await service.delete_subscription(session, workspace_id, subscription_id)


def _replay_route(router: APIRouter, clock: Clock) -> None:
    @router.post(
        "/{subscription_id}/replay",
        status_code=status.HTTP_202_ACCEPTED,
        summary="Send the matching triggers of a time range again",
    )
    async def replay(
        workspace: str,
        subscription_id: str,
        body: schemas.ReplayIn,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.ReplayOut:
        replay_id, queued = await service.replay(
            session,
            workspace_id,
            subscription_id,
            since=body.since,
            until=body.until,
            now=clock.now(),
        )
        return schemas.ReplayOut(replay_id=replay_id, queued=queued)
