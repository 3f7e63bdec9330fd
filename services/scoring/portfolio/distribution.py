"""How the portfolio spreads over tiers and risk levels: counts for the API and reports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.contracts.scores import RiskLevel


@dataclass(frozen=True, slots=True)
class AccountStanding:
    """One account's tier and risk level (``None``: none yet)."""

    tier: str | None
    risk_level: RiskLevel | None


@dataclass(frozen=True, slots=True)
class PortfolioDistribution:
    """Accounts per tier (in ladder order, then tiers the ladder lacks by name, then no tier)
    and per risk level (low, medium, high, then not assessed); zero counts included."""

    total: int
    by_tier: tuple[tuple[str | None, int], ...]
    by_risk: tuple[tuple[RiskLevel | None, int], ...]

    def to_json(self) -> dict[str, object]:
        return {
            "total": self.total,
            "by_tier": [{"tier": tier, "accounts": n} for tier, n in self.by_tier],
            "by_risk": [
                {"risk_level": None if level is None else level.value, "accounts": n}
                for level, n in self.by_risk
            ],
        }


def portfolio_distribution(
    accounts: Iterable[AccountStanding], ladder: Sequence[str] = ()
) -> PortfolioDistribution:
    """Count ``accounts`` per tier and per risk level; ``ladder`` lists the tier ids in order
    (each shown, even with no account)."""
    tiers: Counter[str | None] = Counter()
    risks: Counter[RiskLevel | None] = Counter()
    total = 0
    for account in accounts:
        tiers[account.tier] += 1
        risks[account.risk_level] += 1
        total += 1
    others = sorted(tier for tier in tiers if tier is not None and tier not in ladder)
    tier_order: list[str | None] = [*ladder, *others, None]
    risk_order: list[RiskLevel | None] = [*RiskLevel, None]
    return PortfolioDistribution(
        total,
        tuple((tier, tiers[tier]) for tier in tier_order),
        tuple((level, risks[level]) for level in risk_order),
    )
