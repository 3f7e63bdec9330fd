"""Portfolio figures over a period ``[start, end)`` (epoch seconds) from accounts' contracts.

Each figure is a :class:`Figure`: its value, its formula, the inputs it used, or no value and
the reason (missing data, several currencies, nothing to divide by): never a guess. Money is
never converted between currencies: figures over accounts in several currencies have no value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.scoring.portfolio.contracts import YEAR, AccountContracts
from services.scoring.portfolio.errors import PortfolioInputInvalid

MONTH = YEAR / 12

InputValue = float | int | str | None


@dataclass(frozen=True, slots=True)
class Figure:
    """A portfolio figure: ``value`` by ``formula`` from ``inputs``, or ``None`` and why."""

    name: str
    value: float | None
    formula: str
    inputs: Mapping[str, InputValue] = field(default_factory=dict)
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "formula": self.formula,
            "inputs": dict(self.inputs),
            "reason": self.reason,
        }


RENEWAL_RATE = "renewed terms / terms that ended in the period"
GRR = "sum(min(ARR at end, ARR at start)) / sum(ARR at start), over accounts active at start"
NRR = "sum(ARR at end) / sum(ARR at start), over accounts active at start"
LTV_CAC = (
    "LTV / CAC; LTV = ARPA * gross margin / annual churn, ARPA = ARR at start / accounts "
    "active at start, annual churn = (accounts active at start and not at end / accounts "
    "active at start) * year / period; CAC = acquisition cost / accounts won in the period "
    "with a known acquisition cost"
)
CAC_PAYBACK = (
    "sum(acquisition cost) / sum(first-term ARR / 12 * gross margin), over accounts won in "
    "the period with a known acquisition cost"
)


def renewal_rate(accounts: Iterable[AccountContracts], start: int, end: int) -> Figure:
    """Renewal rate: ``renewed / due``, where ``due`` counts the terms (of the contract or a
    renewal) that ended in ``[start, end)`` and ``renewed`` those followed by another term
    starting at their end. A term cut short by a cancellation ended when it took effect."""
    _check_period(start, end)
    due = renewed = 0
    for account in accounts:
        terms = account.terms()
        for index, term in enumerate(terms):
            if start <= term.ends_at < end:
                due += 1
                following = terms[index + 1] if index + 1 < len(terms) else None
                renewed += following is not None and following.starts_at == term.ends_at
    inputs = {"start": start, "end": end, "due": due, "renewed": renewed}
    if due == 0:
        return Figure("renewal_rate", None, RENEWAL_RATE, inputs, "no term ended in the period")
    return Figure("renewal_rate", renewed / due, RENEWAL_RATE, inputs)


def revenue_retention(
    accounts: Iterable[AccountContracts], start: int, end: int
) -> tuple[Figure, Figure]:
    """Gross and net revenue retention of the accounts paying at ``start``: their annual
    recurring revenue (ARR, each term's value annualised by its length) at ``end`` against
    at ``start``. Net counts expansion; gross caps each account at its starting ARR, so it
    only measures what was lost (churn and contraction). New accounts are left out."""
    _check_period(start, end)
    cohort = [a for a in accounts if a.annual_value_at(start) > 0]
    problem = _currency_problem(cohort)
    at_start = sum(a.annual_value_at(start) for a in cohort)
    at_end = sum(a.annual_value_at(end) for a in cohort)
    kept = sum(min(a.annual_value_at(end), a.annual_value_at(start)) for a in cohort)
    inputs: dict[str, InputValue] = {
        "start": start,
        "end": end,
        "accounts": len(cohort),
        "currency": _currency(cohort),
        "arr_at_start": at_start,
    }
    if problem is None and not cohort:
        problem = "no account was paying at the period start"
    if problem is not None:
        return (
            Figure("gross_revenue_retention", None, GRR, inputs, problem),
            Figure("net_revenue_retention", None, NRR, inputs, problem),
        )
    return (
        Figure("gross_revenue_retention", kept / at_start, GRR, {**inputs, "arr_kept": kept}),
        Figure("net_revenue_retention", at_end / at_start, NRR, {**inputs, "arr_at_end": at_end}),
    )


def ltv_to_cac(
    accounts: Sequence[AccountContracts], start: int, end: int, *, gross_margin: float = 1.0
) -> Figure:
    """LTV:CAC (the bar is 3 or more). LTV is the average ARR per account paying at
    ``start`` times ``gross_margin`` (1.0, the default, gives a revenue LTV) over the annual
    logo churn of those accounts (linear: the period's churn times years per period); CAC the
    average acquisition cost of the accounts whose contract started in the period and states
    one. No value without churn (the lifetime is unknown), costs or paying accounts."""
    _check_period(start, end)
    _check_margin(gross_margin)
    cohort = [a for a in accounts if a.annual_value_at(start) > 0]
    won = _won_with_cost(accounts, start, end)
    inputs: dict[str, InputValue] = {
        "start": start,
        "end": end,
        "gross_margin": gross_margin,
        "accounts": len(cohort),
        "accounts_won_with_cost": len(won),
        "currency": _currency([*cohort, *won]),
    }
    problem = _currency_problem([*cohort, *won])
    if problem is None and not cohort:
        problem = "no account was paying at the period start"
    if problem is None and not won:
        problem = "no account won in the period states an acquisition cost"
    if problem is not None:
        return Figure("ltv_to_cac", None, LTV_CAC, inputs, problem)
    churned = sum(1 for a in cohort if a.annual_value_at(end) == 0)
    arpa = sum(a.annual_value_at(start) for a in cohort) / len(cohort)
    annual_churn = churned / len(cohort) * YEAR / (end - start)
    cac = sum(_cost(a) for a in won) / len(won)
    inputs |= {"churned": churned, "arpa": arpa, "annual_churn": annual_churn, "cac": cac}
    if churned == 0:
        return Figure(
            "ltv_to_cac", None, LTV_CAC, inputs, "no account churned in the period: no lifetime"
        )
    if cac == 0:
        return Figure("ltv_to_cac", None, LTV_CAC, inputs, "the acquisition costs are all 0")
    ltv = arpa * gross_margin / annual_churn
    return Figure("ltv_to_cac", ltv / cac, LTV_CAC, inputs | {"ltv": ltv})


def cac_payback_months(
    accounts: Iterable[AccountContracts], start: int, end: int, *, gross_margin: float = 1.0
) -> Figure:
    """CAC payback in months (the bar is under 12): what winning the accounts whose contract
    started in the period cost, over the monthly gross profit of their first term (first-term
    ARR / 12 times ``gross_margin``), counting only accounts that state an acquisition cost."""
    _check_period(start, end)
    _check_margin(gross_margin)
    won = _won_with_cost(accounts, start, end)
    cost = sum(_cost(a) for a in won)
    monthly = sum(a.terms()[0].annual_value / 12 * gross_margin for a in won)
    inputs: dict[str, InputValue] = {
        "start": start,
        "end": end,
        "gross_margin": gross_margin,
        "accounts_won_with_cost": len(won),
        "currency": _currency(won),
        "acquisition_cost": cost,
        "monthly_gross_profit": monthly,
    }
    problem = _currency_problem(won)
    if problem is None and not won:
        problem = "no account won in the period states an acquisition cost"
    if problem is None and monthly == 0:
        problem = "the accounts won bring no revenue"
    if problem is not None:
        return Figure("cac_payback_months", None, CAC_PAYBACK, inputs, problem)
    return Figure("cac_payback_months", cost / monthly, CAC_PAYBACK, inputs)


def portfolio_figures(
    accounts: Sequence[AccountContracts], start: int, end: int, *, gross_margin: float = 1.0
) -> tuple[Figure, ...]:
    """Every figure above for one period, in a fixed order."""
    gross, net = revenue_retention(accounts, start, end)
    return (
        renewal_rate(accounts, start, end),
        gross,
        net,
        ltv_to_cac(accounts, start, end, gross_margin=gross_margin),
        cac_payback_months(accounts, start, end, gross_margin=gross_margin),
    )


def _won_with_cost(
    accounts: Iterable[AccountContracts], start: int, end: int
) -> list[AccountContracts]:
    return [
        a
        for a in accounts
        if start <= a.contract.starts_at < end and a.contract.acquisition_cost is not None
    ]


def _cost(account: AccountContracts) -> float:
    assert account.contract.acquisition_cost is not None
    return account.contract.acquisition_cost


def _currency(accounts: Iterable[AccountContracts]) -> str | None:
    currencies = sorted({a.currency for a in accounts})
    return ", ".join(currencies) if currencies else None


def _currency_problem(accounts: Iterable[AccountContracts]) -> str | None:
    currencies = sorted({a.currency for a in accounts})
    if len(currencies) > 1:
        return f"contracts in several currencies ({', '.join(currencies)}) are not converted"
    return None


def _check_period(start: int, end: int) -> None:
    if end <= start:
        raise PortfolioInputInvalid("a period ends after it starts")


def _check_margin(gross_margin: float) -> None:
    if not 0 < gross_margin <= 1:
        raise PortfolioInputInvalid("gross margin is a share above 0 and at most 1")
