"""The account facts that events state: CRM contract, renewal, invoice and ticket facts,
group traits, and the roles its contacts hold. Pure.

Facts are flat names (``crm.seats``, ``crm.invoice_status``, ``account.business_type``...).
A later event replaces a fact; open tickets are the ids opened and not closed since;
renewal outcomes (renewed, cancelled) are kept, the latest :data:`MAX_OUTCOMES`, for the
portfolio figures (renewal rate, revenue retention).

=======================================  ===============================================
event                                    facts
=======================================  ===============================================
``milepost.crm.account.upserted``        ``account.name``, ``account.business_type``,
                                         ``account.industry``, ``account.region``,
                                         ``account.size``
``milepost.crm.contract.signed``         ``crm.contract_value``, ``crm.currency``,
                                         ``crm.acquisition_cost``, ``crm.seats``,
                                         ``crm.contract_started_at``,
                                         ``crm.contract_ends_at``, ``crm.renewal_at``
``milepost.crm.subscription.renewed``    ``crm.renewal_at``, ``crm.seats``; outcome
                                         ``renewed`` (until, value)
``milepost.crm.subscription.cancelled``  ``crm.cancelled_at``; outcome ``cancelled``
                                         (until: when it takes effect)
``milepost.crm.invoice.paid``/overdue    ``crm.invoice_status`` (``paid``, ``overdue``)
``milepost.crm.deal.stage_changed``      ``crm.deal_stage``
``milepost.crm.ticket.opened``/closed    open tickets
group call traits                        ``account.name``, ``account.business_type``,
                                         ``account.plan``
=======================================  ===============================================

Dates become epoch seconds (midnight UTC); money becomes a float.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any

import msgspec

from services.scoring.portfolio import (
    AccountContracts,
    Cancellation,
    Contract,
    PortfolioInputInvalid,
    Renewal,
)
from shared.contracts.events import AnyEvent, EventType

FactValue = str | float | int
MAX_OUTCOMES = 40
MAX_OPEN_TICKETS = 200
TEXT_LIMIT = 256

_ACCOUNT_FIELDS = ("name", "business_type", "industry", "region", "size")
_TRAITS = ("name", "business_type", "plan")


class Outcome(msgspec.Struct, frozen=True, gc=False):
    """A renewal outcome stated ``at``: ``renewed`` (until ``until``, at ``value`` for the new
    term) or ``cancelled`` (taking effect at ``until``)."""

    kind: str
    at: int
    value: float | None = None
    until: int | None = None


class AccountFacts(msgspec.Struct, frozen=True, gc=False):
    """What events have stated about one account; ``open_tickets`` is ``None`` until a
    ticket event was seen (no figure rather than zero); ``paths`` are the growth paths that
    enrolled it (by their own ``enrol_when``), for tiers and diagnostics."""

    values: Mapping[str, FactValue] = msgspec.field(default_factory=dict)
    roles: frozenset[str] = frozenset()
    open_tickets: tuple[str, ...] | None = None
    outcomes: tuple[Outcome, ...] = ()
    paths: frozenset[str] = frozenset()

    def number(self, name: str) -> float | None:
        value = self.values.get(name)
        return float(value) if isinstance(value, int | float) else None


def stated_facts(event: AnyEvent) -> dict[str, FactValue]:
    """The facts ``event`` states (see the module docstring)."""
    if event.type is EventType.GROUP:
        return _pick(event.traits, _TRAITS, "account.")
    if event.type is not EventType.CRM:
        return {}
    data = event.properties
    kind = event.event
    if kind == "milepost.crm.account.upserted":
        return _pick(data, _ACCOUNT_FIELDS, "account.")
    facts: dict[str, FactValue] = {}
    if kind == "milepost.crm.contract.signed":
        _put(facts, "crm.contract_value", _money(data.get("value")))
        _put(facts, "crm.currency", _text(data.get("currency")))
        _put(facts, "crm.acquisition_cost", _money(data.get("acquisition_cost")))
        _put(facts, "crm.seats", _money(data.get("seats")))
        _put(facts, "crm.contract_started_at", _epoch(data.get("starts_on")))
        _put(facts, "crm.contract_ends_at", _epoch(data.get("ends_on")))
        _put(facts, "crm.renewal_at", _epoch(data.get("ends_on")))
    elif kind == "milepost.crm.subscription.renewed":
        _put(facts, "crm.renewal_at", _epoch(data.get("renewed_until")))
        _put(facts, "crm.renewal_value", _money(data.get("value")))
        _put(facts, "crm.seats", _money(data.get("seats")))
    elif kind == "milepost.crm.subscription.cancelled":
        _put(facts, "crm.cancelled_at", _epoch(data.get("effective_on")))
    elif kind == "milepost.crm.invoice.paid":
        facts["crm.invoice_status"] = "paid"
    elif kind == "milepost.crm.invoice.overdue":
        facts["crm.invoice_status"] = "overdue"
    elif kind == "milepost.crm.deal.stage_changed":
        _put(facts, "crm.deal_stage", _text(data.get("stage")))
    return facts


def numeric(facts: Mapping[str, FactValue]) -> dict[str, float]:
    """The facts that are numbers: what ``fact`` metrics may follow."""
    return {k: float(v) for k, v in facts.items() if isinstance(v, int | float)}


def with_event(
    facts: AccountFacts, event: AnyEvent, stated: Mapping[str, FactValue], roles: Iterable[str]
) -> AccountFacts:
    """``facts`` after ``event``, which stated ``stated`` and named contacts in ``roles``."""
    values = {**facts.values, **stated} if stated else facts.values
    known = facts.roles | frozenset(roles)
    tickets = facts.open_tickets
    outcomes = facts.outcomes
    at = int(event.timestamp.timestamp())
    ticket = event.properties.get("ticket_id") if event.type is EventType.CRM else None
    if event.event == "milepost.crm.ticket.opened" and isinstance(ticket, str):
        held = tickets or ()
        tickets = held if ticket in held else (*held, ticket)[-MAX_OPEN_TICKETS:]
    elif event.event == "milepost.crm.ticket.closed" and isinstance(ticket, str):
        tickets = tuple(t for t in tickets or () if t != ticket)
    elif event.event == "milepost.crm.subscription.renewed":
        value = stated_number(stated, "crm.renewal_value")
        outcomes = (*outcomes, Outcome("renewed", at, value, _int(stated.get("crm.renewal_at"))))
    elif event.event == "milepost.crm.subscription.cancelled":
        until = _int(stated.get("crm.cancelled_at"))
        outcomes = (*outcomes, Outcome("cancelled", at, until=until))
    if (
        values is facts.values
        and known == facts.roles
        and tickets is facts.open_tickets
        and outcomes is facts.outcomes
    ):
        return facts
    return AccountFacts(values, known, tickets, outcomes[-MAX_OUTCOMES:], facts.paths)


def contracts_of(account_id: str, facts: AccountFacts) -> AccountContracts | None:
    """The account's contract history for the portfolio figures: the signed contract (its
    term, value, currency, acquisition cost), its renewals and its cancellation; ``None``
    without a signed contract with a term, value and currency."""
    starts = facts.number("crm.contract_started_at")
    ends = facts.number("crm.contract_ends_at")
    value = facts.number("crm.contract_value")
    currency = facts.values.get("crm.currency")
    if starts is None or ends is None or value is None or not isinstance(currency, str):
        return None
    try:
        contract = Contract(
            int(starts), int(ends), value, currency, facts.number("crm.acquisition_cost")
        )
    except PortfolioInputInvalid:
        return None
    renewals = tuple(
        Renewal(o.at, o.until, o.value)
        for o in facts.outcomes
        if o.kind == "renewed" and o.until is not None
    )
    cancelled = [o.until for o in facts.outcomes if o.kind == "cancelled" and o.until is not None]
    cancellation = Cancellation(cancelled[-1]) if cancelled else None
    return AccountContracts(account_id, contract, renewals, cancellation)


def stated_number(stated: Mapping[str, FactValue], name: str) -> float | None:
    value = stated.get(name)
    return float(value) if isinstance(value, int | float) else None


def facts_to_json(facts: AccountFacts) -> dict[str, Any]:
    """``facts`` as a JSON document for storage."""
    document: dict[str, Any] = {"values": dict(facts.values), "roles": sorted(facts.roles)}
    if facts.open_tickets is not None:
        document["open_tickets"] = list(facts.open_tickets)
    if facts.paths:
        document["paths"] = sorted(facts.paths)
    if facts.outcomes:
        document["outcomes"] = [
            {"kind": o.kind, "at": o.at, "value": o.value, "until": o.until} for o in facts.outcomes
        ]
    return document


def facts_from_json(document: Mapping[str, Any]) -> AccountFacts:
    """The facts :func:`facts_to_json` stored."""
    tickets = document.get("open_tickets")
    return AccountFacts(
        dict(document.get("values", {})),
        frozenset(document.get("roles", ())),
        None if tickets is None else tuple(tickets),
        tuple(
            Outcome(o["kind"], o["at"], o.get("value"), o.get("until"))
            for o in document.get("outcomes", ())
        ),
        frozenset(document.get("paths", ())),
    )


def _pick(source: Mapping[str, Any], names: Iterable[str], prefix: str) -> dict[str, FactValue]:
    picked: dict[str, FactValue] = {}
    for name in names:
        value = source.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            picked[prefix + name] = value
        elif isinstance(value, str):
            picked[prefix + name] = value[:TEXT_LIMIT]
    return picked


def _put(facts: dict[str, FactValue], name: str, value: FactValue | None) -> None:
    if value is not None:
        facts[name] = value


def _money(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _text(value: object) -> str | None:
    return value[:TEXT_LIMIT] if isinstance(value, str) else None


def _epoch(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return int(datetime.combine(day, time(), UTC).timestamp())


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
