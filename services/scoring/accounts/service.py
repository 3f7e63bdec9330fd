"""What the API reads about scored accounts: one account, its history, a page of accounts,
the portfolio's distribution, and the workspace's North Star."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.accounts import repository
from services.scoring.accounts.models import ScoreHistoryRow, ScoringAccountRow
from services.scoring.catalog.service import definitions_in_force
from services.scoring.definitions import Window
from services.scoring.errors import AccountNotScored, StoreCorrupt
from services.scoring.evaluation.facts import contracts_of, facts_from_json
from services.scoring.evaluation.snapshot import build_snapshot
from services.scoring.metrics import decode
from services.scoring.portfolio import Figure, portfolio_figures

MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class NorthStarDefinition:
    metric_id: str
    name: str
    window: Window


@dataclass(frozen=True, slots=True)
class Group:
    key: str | None
    accounts: int
    mean_health: float | None
    north_star: float | None


@dataclass(frozen=True, slots=True)
class Portfolio:
    accounts: int
    by_tier: tuple[Group, ...]
    by_risk_level: tuple[Group, ...]
    by_band: tuple[Group, ...]

    @property
    def north_star_total(self) -> float | None:
        totals = [g.north_star for g in self.by_tier if g.north_star is not None]
        return sum(totals) if totals else None


async def north_star_of(session: AsyncSession, workspace_id: str) -> NorthStarDefinition:
    definitions = await definitions_in_force(session, workspace_id)
    metric = definitions.get(definitions.north_star)
    window = Window.P28D if Window.P28D in metric.windows else max(metric.windows)
    return NorthStarDefinition(metric.id, metric.name, window)


async def account(session: AsyncSession, workspace_id: str, account_id: str) -> ScoringAccountRow:
    row = await repository.account(session, workspace_id, account_id)
    if row is None:
        raise AccountNotScored(f"no scored account {account_id!r} in this workspace")
    return row


async def figures_of(
    session: AsyncSession, workspace_id: str, row: ScoringAccountRow
) -> dict[str, float | None]:
    """The account's snapshot figures (docs/scoring.md, "Snapshot names") as of its last
    score, by the definitions in force; none when its stored metrics do not decode."""
    definitions = await definitions_in_force(session, workspace_id)
    try:
        store = decode(row.metrics)
    except StoreCorrupt:
        return {}
    at = int(row.evaluated_at.timestamp())
    snapshot = build_snapshot(store, definitions, facts_from_json(row.facts), now=at)
    return {
        name: None if figure is None else round(figure, 4)
        for name, figure in snapshot.metrics.items()
    }


async def history(
    session: AsyncSession,
    workspace_id: str,
    account_id: str,
    *,
    cursor: int | None = None,
    limit: int = 50,
) -> tuple[Sequence[ScoreHistoryRow], int | None]:
    """A page of the account's score events, newest first, and the next page's cursor."""
    await account(session, workspace_id, account_id)
    limit = max(1, min(limit, MAX_PAGE))
    rows = await repository.page_of_history(
        session, workspace_id, account_id, before=cursor, limit=limit + 1
    )
    page = rows[:limit]
    return page, (page[-1].position if len(rows) > limit else None)


async def accounts(
    session: AsyncSession,
    workspace_id: str,
    *,
    risk_level: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[Sequence[ScoringAccountRow], str | None]:
    """A page of the workspace's accounts by id, optionally at one risk level."""
    limit = max(1, min(limit, MAX_PAGE))
    rows = await repository.page_of_accounts(
        session, workspace_id, risk_level=risk_level, after=cursor, limit=limit + 1
    )
    page = rows[:limit]
    return page, (page[-1].account_id if len(rows) > limit else None)


async def figures(
    session: AsyncSession, workspace_id: str, *, start: int, end: int, gross_margin: float
) -> tuple[tuple[Figure, ...], int]:
    """The portfolio figures over ``[start, end)`` from the accounts' CRM contracts, and
    how many accounts have one. Raises :class:`PortfolioInputInvalid` for a bad period or
    margin."""
    found = []
    for account_id, stored in await repository.contract_facts(session, workspace_id):
        contracts = contracts_of(account_id, facts_from_json(stored))
        if contracts is not None:
            found.append(contracts)
    return portfolio_figures(found, start, end, gross_margin=gross_margin), len(found)


async def portfolio(session: AsyncSession, workspace_id: str) -> Portfolio:
    """How the workspace's scored accounts spread over tiers, risk levels and bands."""
    cells = await repository.distribution(session, workspace_id)
    total = sum(count for *_, count, _avg, _sum in cells)

    def grouped(index: int) -> tuple[Group, ...]:
        groups: dict[str | None, list[tuple[int, float | None, float | None]]] = {}
        for tier, risk, band, count, avg, star in cells:
            groups.setdefault((tier, risk, band)[index], []).append((count, avg, star))
        found = []
        for key, parts in groups.items():
            count = sum(c for c, _, _ in parts)
            weighted = [(c, avg) for c, avg, _ in parts if avg is not None]
            weight = sum(c for c, _ in weighted)
            mean = sum(c * avg for c, avg in weighted) / weight if weight else None
            stars = [s for _, _, s in parts if s is not None]
            found.append(
                Group(
                    key,
                    count,
                    None if mean is None else round(mean, 1),
                    sum(stars) if stars else None,
                )
            )
        return tuple(sorted(found, key=lambda g: (g.key is None, g.key or "")))

    return Portfolio(total, grouped(0), grouped(1), grouped(2))
