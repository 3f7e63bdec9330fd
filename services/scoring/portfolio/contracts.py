"""An account's contract history as CRM events state it, as terms of recurring revenue.

The inputs mirror the CRM events (``shared/contracts/crm.py``): ``milepost.crm.contract.signed``
(:class:`Contract`), ``milepost.crm.subscription.renewed`` (:class:`Renewal`) and
``milepost.crm.subscription.cancelled`` (:class:`Cancellation`). Times are epoch seconds;
a term runs from ``starts_at`` up to, not including, ``ends_at``. Money is in the contract's
currency and never converted.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.scoring.portfolio.errors import PortfolioInputInvalid

YEAR = 365 * 86400
"""Seconds in the year recurring revenue is annualised over."""


@dataclass(frozen=True, slots=True)
class Contract:
    """The signed contract: ``value`` for the whole term, and what winning it cost if known."""

    starts_at: int
    ends_at: int
    value: float
    currency: str
    acquisition_cost: float | None = None

    def __post_init__(self) -> None:
        if self.ends_at <= self.starts_at:
            raise PortfolioInputInvalid("a contract ends after it starts")
        if self.value < 0 or (self.acquisition_cost is not None and self.acquisition_cost < 0):
            raise PortfolioInputInvalid("contract value and acquisition cost are not negative")


@dataclass(frozen=True, slots=True)
class Renewal:
    """A renewal recorded ``at``, extending the subscription to ``until`` at ``value`` for
    the new term (``None``: the previous term's value, scaled to the new term's length)."""

    at: int
    until: int
    value: float | None = None


@dataclass(frozen=True, slots=True)
class Cancellation:
    """The subscription ends at ``effective_at``."""

    effective_at: int


@dataclass(frozen=True, slots=True)
class Term:
    """A stretch of paid subscription and its value."""

    starts_at: int
    ends_at: int
    value: float

    @property
    def annual_value(self) -> float:
        """``value * YEAR / (ends_at - starts_at)``: recurring revenue per year."""
        return self.value * YEAR / (self.ends_at - self.starts_at)

    def covers(self, at: int) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True, slots=True)
class AccountContracts:
    """One account's contract, renewals and cancellation."""

    account_id: str
    contract: Contract
    renewals: tuple[Renewal, ...] = ()
    cancellation: Cancellation | None = None

    @property
    def currency(self) -> str:
        return self.contract.currency

    def terms(self) -> tuple[Term, ...]:
        """The contract's term, then one per renewal that extends the subscription (ordered
        by ``until``; a renewal not reaching past the current end adds nothing), each starting
        where the previous one ended; a cancellation cuts the term it falls in and drops the
        later ones."""
        first = self.contract
        terms = [Term(first.starts_at, first.ends_at, first.value)]
        for renewal in sorted(self.renewals, key=lambda r: (r.until, r.at)):
            last = terms[-1]
            if renewal.until <= last.ends_at:
                continue
            length = renewal.until - last.ends_at
            value = (
                renewal.value
                if renewal.value is not None
                else last.value * length / (last.ends_at - last.starts_at)
            )
            terms.append(Term(last.ends_at, renewal.until, value))
        if self.cancellation is None:
            return tuple(terms)
        end = self.cancellation.effective_at
        kept = []
        for term in terms:
            if term.starts_at >= end:
                break
            if term.ends_at > end:
                kept.append(
                    Term(
                        term.starts_at,
                        end,
                        term.value * (end - term.starts_at) / (term.ends_at - term.starts_at),
                    )
                )
                break
            kept.append(term)
        return tuple(kept)

    def annual_value_at(self, at: int) -> float:
        """Recurring revenue per year at ``at``: the covering term's, 0 when none covers it."""
        return next((term.annual_value for term in self.terms() if term.covers(at)), 0.0)
