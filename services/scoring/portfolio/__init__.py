"""Portfolio figures from the contracts CRM events state (renewal rate, gross and net revenue
retention, LTV:CAC, CAC payback), each with its formula and inputs, and the portfolio's spread
over tiers and risk levels."""

from services.scoring.portfolio.contracts import (
    YEAR,
    AccountContracts,
    Cancellation,
    Contract,
    Renewal,
    Term,
)
from services.scoring.portfolio.distribution import (
    AccountStanding,
    PortfolioDistribution,
    portfolio_distribution,
)
from services.scoring.portfolio.errors import PortfolioInputInvalid
from services.scoring.portfolio.figures import (
    Figure,
    cac_payback_months,
    ltv_to_cac,
    portfolio_figures,
    renewal_rate,
    revenue_retention,
)

__all__ = [
    "YEAR",
    "AccountContracts",
    "AccountStanding",
    "Cancellation",
    "Contract",
    "Figure",
    "PortfolioDistribution",
    "PortfolioInputInvalid",
    "Renewal",
    "Term",
    "cac_payback_months",
    "ltv_to_cac",
    "portfolio_distribution",
    "portfolio_figures",
    "renewal_rate",
    "revenue_retention",
]
