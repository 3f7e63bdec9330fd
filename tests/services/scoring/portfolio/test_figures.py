"""Portfolio figures on a hand-computed portfolio, their refusals (no guess when data is
missing), contract terms, and the spread over tiers and risk levels."""

from __future__ import annotations

import pytest

from services.scoring.portfolio import (
    YEAR,
    AccountContracts,
    AccountStanding,
    Cancellation,
    Contract,
    PortfolioInputInvalid,
    Renewal,
    Term,
    cac_payback_months,
    ltv_to_cac,
    portfolio_distribution,
    portfolio_figures,
    renewal_rate,
    revenue_retention,
)
from shared.contracts.scores import RiskLevel

Y = YEAR
H = YEAR // 2
START, END = H, H + Y
"""The period: from half a year to a year and a half."""
DAY = 86400


def account(
    account_id: str,
    starts: int,
    ends: int,
    value: float,
    *,
    cost: float | None = None,
    currency: str = "EUR",
    renewals: tuple[Renewal, ...] = (),
    cancelled_at: int | None = None,
) -> AccountContracts:
    return AccountContracts(
        account_id,
        Contract(starts, ends, value, currency, cost),
        renewals,
        None if cancelled_at is None else Cancellation(cancelled_at),
    )


# A expands 1200 -> 1500, B contracts 1000 -> 800, C cancels at its end, D is won in the
# period (cost 1200, 2400 a year), E holds a two-year contract of 4000 (2000 a year).
A = account("a", 0, Y, 1200, cost=600, renewals=(Renewal(Y - 10 * DAY, 2 * Y, 1500),))
B = account("b", 0, Y, 1000, renewals=(Renewal(Y - 5 * DAY, 2 * Y, 800),))
C = account("c", 0, Y, 2000, cancelled_at=Y)
D = account("d", Y, 2 * Y, 2400, cost=1200)
E = account("e", 0, 2 * Y, 4000)
PORTFOLIO = (A, B, C, D, E)


def test_renewal_rate_counts_terms_that_ended_in_the_period() -> None:
    figure = renewal_rate(PORTFOLIO, START, END)
    # Ended in the period: A's, B's (both renewed at their end) and C's (cancelled).
    assert figure.value == pytest.approx(2 / 3)
    assert figure.inputs == {"start": START, "end": END, "due": 3, "renewed": 2}
    assert figure.reason is None
    assert "renewed terms" in figure.formula


def test_gross_and_net_revenue_retention_of_the_accounts_paying_at_the_start() -> None:
    gross, net = revenue_retention(PORTFOLIO, START, END)
    # ARR at start: 1200 + 1000 + 2000 + 2000 = 6200 (D was not yet a customer).
    # At end: 1500 + 800 + 0 + 2000 = 4300; kept, capped at the start: 1200 + 800 + 0 + 2000.
    assert net.value == pytest.approx(4300 / 6200)
    assert gross.value == pytest.approx(4000 / 6200)
    assert net.inputs["arr_at_start"] == pytest.approx(6200)
    assert net.inputs["arr_at_end"] == pytest.approx(4300)
    assert gross.inputs["arr_kept"] == pytest.approx(4000)
    assert (net.inputs["accounts"], net.inputs["currency"]) == (4, "EUR")


def test_net_retention_above_one_when_expansion_outweighs_losses() -> None:
    gross, net = revenue_retention((A, E), START, END)
    assert net.value == pytest.approx(3500 / 3200)
    assert gross.value == 1


def test_ltv_to_cac_by_hand() -> None:
    figure = ltv_to_cac(PORTFOLIO, START, END)
    # ARPA 6200 / 4 = 1550; churn 1 of 4 in one year = 0.25; LTV 6200; CAC (D) 1200.
    assert figure.value == pytest.approx(6200 / 1200)
    assert figure.inputs["arpa"] == pytest.approx(1550)
    assert figure.inputs["annual_churn"] == pytest.approx(0.25)
    assert figure.inputs["ltv"] == pytest.approx(6200)
    assert figure.inputs["cac"] == 1200
    with_margin = ltv_to_cac(PORTFOLIO, START, END, gross_margin=0.8)
    assert with_margin.value == pytest.approx(6200 * 0.8 / 1200)


def test_churn_is_annualised_over_the_period_length() -> None:
    quarter = ltv_to_cac(PORTFOLIO, Y - Y // 4, Y + 1)  # C churns in this quarter too
    assert quarter.inputs["churned"] == 1
    assert quarter.inputs["annual_churn"] == pytest.approx(0.25 * Y / (Y // 4 + 1))


def test_cac_payback_months_by_hand() -> None:
    figure = cac_payback_months(PORTFOLIO, START, END)
    # D: 1200 / (2400 / 12) = 6 months.
    assert figure.value == pytest.approx(6)
    assert figure.inputs["acquisition_cost"] == 1200
    assert figure.inputs["monthly_gross_profit"] == pytest.approx(200)
    assert cac_payback_months(PORTFOLIO, START, END, gross_margin=0.5).value == pytest.approx(12)


def test_missing_data_gives_no_value_and_the_reason() -> None:
    without_cost = (A, B, C, E)
    assert ltv_to_cac(without_cost, START, END).reason == (
        "no account won in the period states an acquisition cost"
    )
    payback = cac_payback_months(without_cost, START, END)
    assert (payback.value, payback.reason) == (
        None,
        "no account won in the period states an acquisition cost",
    )
    no_churn = ltv_to_cac((A, B, D, E), START, END)
    assert no_churn.value is None
    assert no_churn.reason == "no account churned in the period: no lifetime"
    assert renewal_rate((D,), START, END).reason == "no term ended in the period"
    gross, net = revenue_retention((D,), START, END)
    assert gross.value is None
    assert net.reason == "no account was paying at the period start"


def test_several_currencies_are_never_converted() -> None:
    usd = account("f", 0, Y, 500, currency="USD")
    gross, net = revenue_retention((*PORTFOLIO, usd), START, END)
    assert gross.value is None
    assert net.reason == "contracts in several currencies (EUR, USD) are not converted"
    assert ltv_to_cac((*PORTFOLIO, usd), START, END).value is None


def test_all_figures_in_order_and_as_json() -> None:
    figures = portfolio_figures(PORTFOLIO, START, END)
    assert [f.name for f in figures] == [
        "renewal_rate",
        "gross_revenue_retention",
        "net_revenue_retention",
        "ltv_to_cac",
        "cac_payback_months",
    ]
    document = figures[0].to_json()
    assert document["value"] == pytest.approx(2 / 3)
    assert set(document) == {"name", "value", "formula", "inputs", "reason"}


@pytest.mark.parametrize(
    "call",
    [
        lambda: renewal_rate(PORTFOLIO, END, START),
        lambda: ltv_to_cac(PORTFOLIO, START, END, gross_margin=0),
        lambda: cac_payback_months(PORTFOLIO, START, END, gross_margin=1.5),
        lambda: Contract(10, 10, 1, "EUR"),
        lambda: Contract(0, 10, -1, "EUR"),
    ],
)
def test_impossible_inputs_are_refused(call: object) -> None:
    with pytest.raises(PortfolioInputInvalid):
        call()  # type: ignore[operator]


# -- terms ---------------------------------------------------------------------------------


def test_a_renewal_without_a_value_keeps_the_yearly_rate() -> None:
    contracts = account("x", 0, Y, 1200, renewals=(Renewal(Y, Y + H),))
    assert contracts.terms() == (Term(0, Y, 1200), Term(Y, Y + H, 600))
    assert contracts.annual_value_at(Y + 1) == pytest.approx(1200)


def test_renewals_in_any_order_and_ones_that_extend_nothing() -> None:
    contracts = account(
        "x",
        0,
        Y,
        1000,
        renewals=(Renewal(2 * Y, 3 * Y, 3000), Renewal(Y, 2 * Y, 2000), Renewal(5, Y)),
    )
    assert [t.value for t in contracts.terms()] == [1000, 2000, 3000]
    assert [t.starts_at for t in contracts.terms()] == [0, Y, 2 * Y]


def test_a_cancellation_cuts_its_term_and_drops_later_ones() -> None:
    contracts = account("x", 0, Y, 1200, renewals=(Renewal(Y, 2 * Y, 2400),), cancelled_at=Y + H)
    assert contracts.terms() == (Term(0, Y, 1200), Term(Y, Y + H, 1200))
    assert contracts.annual_value_at(Y + 1) == pytest.approx(2400)
    assert contracts.annual_value_at(Y + H) == 0
    cancelled_before = account("x", 0, Y, 1200, renewals=(Renewal(Y, 2 * Y),), cancelled_at=Y)
    assert cancelled_before.terms() == (Term(0, Y, 1200),)


# -- distribution --------------------------------------------------------------------------


def test_counts_per_tier_and_risk_level_with_zeros_and_strays() -> None:
    accounts = [
        AccountStanding("L2", RiskLevel.HIGH),
        AccountStanding("L2", RiskLevel.LOW),
        AccountStanding("L1", None),
        AccountStanding(None, RiskLevel.LOW),
        AccountStanding("L9", RiskLevel.MEDIUM),
    ]
    spread = portfolio_distribution(accounts, ["L1", "L2", "L3"])
    assert spread.total == 5
    assert spread.by_tier == (("L1", 1), ("L2", 2), ("L3", 0), ("L9", 1), (None, 1))
    assert spread.by_risk == (
        (RiskLevel.LOW, 2),
        (RiskLevel.MEDIUM, 1),
        (RiskLevel.HIGH, 1),
        (None, 1),
    )
    assert spread.to_json()["by_risk"][0] == {"risk_level": "low", "accounts": 2}  # type: ignore[index]
