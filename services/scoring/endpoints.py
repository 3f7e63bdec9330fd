"""``/api/scoring/workspaces/{workspace}/...``: scores, history, portfolio, definitions.

Every answer names the workspace's North Star. Errors are ``{"detail": {"field",
"message", "problems"}}``: 401 without a valid admin token
(``MILEPOST_SCORING_ADMIN_TOKEN`` or one from ``milepost admin-token create``), 403 with
another workspace's, 404 for an unknown workspace, account or
version, 409 for definitions identical to the current version, 422 for an invalid file
(each problem with its line, column and field).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from fastapi.params import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from services.admin_api import (
    ERROR_RESPONSES,
    Session,
    SourceIn,
    WorkspaceId,
    admin_dependencies,
)
from services.definition_router import DefinitionApi, Route, definition_router, publishing
from services.scoring import schemas
from services.scoring.accounts import service as accounts
from services.scoring.accounts.models import ScoringAccountRow
from services.scoring.accounts.service import Group, NorthStarDefinition
from services.scoring.catalog import service as catalog
from services.scoring.catalog.service import VersionInfo
from services.scoring.definitions import MetricDefinitions, load_metrics
from services.scoring.health import health_explanation
from services.scoring.portfolio import PortfolioInputInvalid
from services.scoring.settings import ScoringSettings
from shared.clock import Clock
from shared.errors import Invalid
from shared.http_errors import ErrorOut
from shared.runtime import Resources

Cursor = Annotated[
    int | None, Query(ge=1, le=2**31 - 1, description="next_cursor of the previous page")
]
HistoryCursor = Annotated[
    int | None, Query(ge=1, le=2**63 - 1, description="next_cursor of the previous page")
]
Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="A version number")]
Limit = Annotated[int, Query(ge=1, le=accounts.MAX_PAGE)]


def scoring_dependencies(settings: ScoringSettings, resources: Resources) -> list[Depends]:
    """Admin-token authentication (``MILEPOST_SCORING_ADMIN_TOKEN`` or a token from
    ``milepost admin-token create``); closed without one."""
    return admin_dependencies(
        resources.sessions, settings.admin_token, variable="MILEPOST_SCORING_ADMIN_TOKEN"
    )


def scoring_router(settings: ScoringSettings, resources: Resources) -> APIRouter:
    """The scoring API: accounts and their history, the portfolio, the metric definitions."""
    dependencies = scoring_dependencies(settings, resources)
    scores = APIRouter(
        prefix="/api/scoring/workspaces/{workspace}",
        tags=["scoring"],
        dependencies=dependencies,
        responses=ERROR_RESPONSES,
    )
    for add_routes in (_account_routes, _history_routes, _portfolio_routes, _figures_routes):
        add_routes(scores)
    router = APIRouter()
    router.include_router(scores)
    router.include_router(
        definition_router(definitions_api(resources.clock), dependencies=dependencies)
    )
    return router


def _account_routes(router: APIRouter) -> None:
    @router.get("/accounts", summary="Scored accounts by id, a page at a time")
    async def list_accounts(
        workspace: str,
        risk_level: Annotated[
            str | None, Query(pattern="^(low|medium|high)$", description="Only this level")
        ] = None,
        cursor: Annotated[str | None, Query(max_length=256)] = None,
        limit: Limit = 50,
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.AccountPage:
        rows, next_cursor = await accounts.accounts(
            session, workspace_id, risk_level=risk_level, cursor=cursor, limit=limit
        )
        star = await accounts.north_star_of(session, workspace_id)
        return schemas.AccountPage(
            items=[_summary(row) for row in rows],
            next_cursor=next_cursor,
            north_star=_star(star),
        )

    @router.get(
        "/accounts/{account_id}",
        summary="An account's health score with its explanation, its signals and its North "
        "Star figure",
    )
    async def get_account(
        workspace: str, account_id: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.AccountScoreOut:
        row = await accounts.account(session, workspace_id, account_id)
        figures = await accounts.figures_of(session, workspace_id, row)
        return _score_out(workspace, row, figures)


def _history_routes(router: APIRouter) -> None:
    @router.get("/accounts/{account_id}/history", summary="An account's score events, newest first")
    async def get_history(
        workspace: str,
        account_id: str,
        cursor: HistoryCursor = None,
        limit: Limit = 50,
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.HistoryPage:
        rows, next_cursor = await accounts.history(
            session, workspace_id, account_id, cursor=cursor, limit=limit
        )
        star = await accounts.north_star_of(session, workspace_id)
        return schemas.HistoryPage(
            items=[
                schemas.HistoryItemOut(
                    position=r.position,
                    score_event_id=r.score_event_id,
                    kind=r.kind,
                    health=r.health,
                    risk_level=r.risk_level,
                    tier=r.tier,
                    signals=r.signals,
                    explanation=r.explanation,
                    occurred_at=r.occurred_at,
                )
                for r in rows
            ],
            next_cursor=next_cursor,
            north_star=_star(star),
        )


def _portfolio_routes(router: APIRouter) -> None:
    @router.get(
        "/portfolio",
        summary="How the scored accounts spread over tiers, risk levels and health bands",
    )
    async def get_portfolio(
        workspace: str, session: Session, workspace_id: WorkspaceId
    ) -> schemas.PortfolioOut:
        found = await accounts.portfolio(session, workspace_id)
        star = await accounts.north_star_of(session, workspace_id)
        return schemas.PortfolioOut(
            workspace=workspace,
            accounts=found.accounts,
            north_star=_star(star, found.north_star_total),
            by_tier=_groups(found.by_tier, found.accounts),
            by_risk_level=_groups(found.by_risk_level, found.accounts),
            by_band=_groups(found.by_band, found.accounts),
        )


def _groups(items: tuple[Group, ...], total: int) -> list[schemas.GroupOut]:
    return [
        schemas.GroupOut(
            key=g.key,
            accounts=g.accounts,
            share=round(g.accounts / total, 4) if total else 0.0,
            mean_health=g.mean_health,
            north_star=g.north_star,
        )
        for g in items
    ]


def _figures_routes(router: APIRouter) -> None:
    @router.get(
        "/portfolio/figures",
        summary="Renewal rate, revenue retention, LTV:CAC and CAC payback over a period, from "
        "the CRM contracts",
        responses={
            status.HTTP_422_UNPROCESSABLE_CONTENT: {
                "model": ErrorOut,
                "description": "A period that ends before it starts, or a margin outside 0..1",
            }
        },
    )
    async def get_figures(
        workspace: str,
        start: Annotated[datetime, Query(description="Period start (ISO 8601; UTC if no zone)")],
        end: Annotated[datetime, Query(description="Period end, excluded")],
        gross_margin: Annotated[
            float, Query(gt=0, le=1, description="1: revenue-based LTV and payback")
        ] = 1.0,
        *,
        session: Session,
        workspace_id: WorkspaceId,
    ) -> schemas.FiguresOut:
        begins, ends = _utc(start), _utc(end)
        try:
            figures, count = await accounts.figures(
                session,
                workspace_id,
                start=int(begins.timestamp()),
                end=int(ends.timestamp()),
                gross_margin=gross_margin,
            )
        except PortfolioInputInvalid as error:
            raise Invalid(str(error), field="end") from error
        star = await accounts.north_star_of(session, workspace_id)
        return schemas.FiguresOut(
            workspace=workspace,
            start=begins,
            end=ends,
            gross_margin=gross_margin,
            accounts_with_contract=count,
            figures=[schemas.FigureOut(**figure.to_json()) for figure in figures],
            north_star=_star(star),
        )


def definitions_api(clock: Clock) -> DefinitionApi[schemas.MetricsSourceIn]:
    """A workspace's metric definitions in the definition catalog: one definition per
    workspace, its versions listed newest first with the North Star."""
    return DefinitionApi(
        prefix="/api/scoring/workspaces/{workspace}/definitions",
        tag="scoring",
        key=None,
        body=schemas.MetricsSourceIn,
        validate_body=schemas.MetricsSourceIn,
        cursor=Cursor,
        limit=Limit,
        version_number=Version,
        page=Route(
            "list_definitions",
            "The metric-definition versions, newest first",
            schemas.DefinitionsPage,
            _definitions_page,
        ),
        publish=Route(
            "publish",
            "Publish metric definitions as the next version",
            schemas.DefinitionsVersionOut,
            publishing(catalog.publish, _version_out, clock),
        ),
        validate=Route(
            "validate",
            "Check a metric-definitions file without publishing it",
            schemas.MetricsValidOut,
            _validate_definitions,
        ),
        version=Route(
            "get_definitions",
            "One version of the metric definitions with its source and metrics",
            schemas.DefinitionsDetailOut,
            _definitions_version,
        ),
    )


async def _definitions_page(
    session: AsyncSession, workspace: str, workspace_id: str, cursor: int | None, limit: int
) -> schemas.DefinitionsPage:
    items, next_cursor = await catalog.list_versions(
        session, workspace_id, cursor=cursor, limit=limit
    )
    star = await accounts.north_star_of(session, workspace_id)
    return schemas.DefinitionsPage(
        items=[_version_out(v) for v in items], next_cursor=next_cursor, north_star=_star(star)
    )


def _validate_definitions(body: SourceIn) -> schemas.MetricsValidOut:
    definitions = load_metrics(body.source_name, text=body.source)
    return schemas.MetricsValidOut(
        north_star=definitions.north_star, metrics=_metrics_out(definitions)
    )


async def _definitions_version(
    session: AsyncSession, workspace_id: str, _key: str | None, version: int
) -> schemas.DefinitionsDetailOut:
    detail = await catalog.show(session, workspace_id, version)
    return schemas.DefinitionsDetailOut(
        **_version_out(detail.info).model_dump(),
        source=detail.source,
        metrics=_metrics_out(detail.definitions),
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _star(star: NorthStarDefinition, value: float | None = None) -> schemas.NorthStarOut:
    return schemas.NorthStarOut(
        metric=star.metric_id, name=star.name, window=star.window.name, value=value
    )


def _signals(row: ScoringAccountRow) -> list[schemas.SignalOut]:
    found = (row.risk or {}).get("signals", [])
    return [
        schemas.SignalOut(
            kind=s["kind"],
            severity=s["severity"],
            measure=s["measure"],
            threshold=s["raise_at"],
            sentence=s["sentence"],
        )
        for s in found
    ]


def _summary(row: ScoringAccountRow) -> schemas.AccountSummaryOut:
    return schemas.AccountSummaryOut(
        account_id=row.account_id,
        health=row.health,
        band=row.band,
        risk_level=row.risk_level,
        tier=row.tier,
        signals=[s.kind for s in _signals(row)],
        north_star=row.north_star,
        evaluated_at=row.evaluated_at,
    )


def _score_out(
    workspace: str, row: ScoringAccountRow, figures: dict[str, float | None]
) -> schemas.AccountScoreOut:
    stored = row.explanation.get("health")
    health = {} if stored is None else health_explanation(stored)
    star = row.explanation["north_star"]
    return schemas.AccountScoreOut(
        workspace=workspace,
        account_id=row.account_id,
        health=row.health,
        band=row.band,
        risk_level=row.risk_level,
        tier=row.tier,
        signals=_signals(row),
        components=[
            schemas.ComponentOut(component=name, **parts)
            for name, parts in health.get("components", {}).items()
        ],
        missing=health.get("missing", []),
        explanation=health.get("text", []),
        north_star=schemas.NorthStarOut(**star),
        facts=row.facts.get("values", {}),
        metrics=figures,
        evaluated_at=row.evaluated_at,
    )


def _version_out(info: VersionInfo) -> schemas.DefinitionsVersionOut:
    return schemas.DefinitionsVersionOut(
        version=info.version,
        source_name=info.source_name,
        digest=info.digest,
        north_star=info.north_star,
        metric_count=info.metric_count,
        published_at=info.published_at,
        published_by=info.published_by,
        current=info.current,
    )


def _metrics_out(definitions: MetricDefinitions) -> list[schemas.MetricOut]:
    return [
        schemas.MetricOut(
            id=m.id,
            name=m.name,
            kind=m.kind.value,
            windows=[w.name for w in m.windows],
            north_star=m.north_star,
            feature=m.feature,
            contact=m.contact,
        )
        for m in definitions.metrics
    ]
