"""Who belongs to which account, in which roles, and what an event says about its account:
the one attribution the engine, scoring and messaging share. Pure.

Membership is learned from three kinds of events:

* ``group`` calls: the user joins the account (``groupId``); roles may come with the call
  in ``context.traits.roles`` (or ``role``);
* ``identify`` calls that carry the account (``context.groupId``): roles in
  ``traits.roles`` or ``traits.role``;
* CRM ``milepost.crm.contact.upserted`` facts: ``contact_id`` with its ``roles``.

Facts are what the engine's conditions read as ``account.*`` (group traits, the CRM
account) and ``crm.*`` (deal stage, contract, subscription, invoice state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from shared.contracts.crm import ContactRole
from shared.contracts.events import AnyEvent, EventType

ROLES = frozenset(role.value for role in ContactRole)
MAX_FACT_TEXT = 256


@dataclass(frozen=True, slots=True)
class Membership:
    account_id: str
    roles: frozenset[str]


def membership_from(event: AnyEvent) -> Membership | None:
    """The membership ``event`` states, if any (roles outside the known five are ignored)."""
    if event.user_id is None or event.account_id is None:
        return None
    if event.type is EventType.GROUP:
        context_traits = event.context.get("traits")
        traits = context_traits if isinstance(context_traits, Mapping) else {}
        return Membership(event.account_id, _roles(traits))
    if event.type is EventType.IDENTIFY:
        return Membership(event.account_id, _roles(event.traits))
    if event.type is EventType.CRM and event.event == "milepost.crm.contact.upserted":
        return Membership(event.account_id, _roles(event.properties))
    return None


def merged(known: Membership | None, learned: Membership) -> Membership:
    """A new membership keeps the known roles when it states none of its own."""
    if known is not None and known.account_id == learned.account_id and not learned.roles:
        return known
    return learned


@dataclass(frozen=True, slots=True)
class Attribution:
    """Where an event belongs: what it taught about its user, its account (``None``: not
    known), and the acting user's roles in that account."""

    learned: Membership | None
    account_id: str | None
    actor_roles: frozenset[str]


def attribute(event: AnyEvent, known: Membership | None) -> Attribution:
    """Attribute ``event`` given what was known about its user before it."""
    stated = membership_from(event)
    learned = merged(known, stated) if stated is not None else None
    member = learned or known
    account = event.account_id or (member.account_id if member is not None else None)
    roles = member.roles if member is not None and member.account_id == account else frozenset()
    return Attribution(learned, account, roles)


def _roles(source: Mapping[str, Any]) -> frozenset[str]:
    raw = source.get("roles", source.get("role"))
    values: Iterable[Any] = raw if isinstance(raw, list) else [raw]
    return frozenset(str(v) for v in values if isinstance(v, str) and v in ROLES)


def facts_from(event: AnyEvent) -> dict[str, Any]:
    """The account facts ``event`` states, as ``account.*`` and ``crm.*`` names."""
    if event.type is EventType.GROUP:
        return {f"account.{k}": v for k, v in event.traits.items() if _is_fact(v)}
    if event.type is not EventType.CRM or event.event is None:
        return {}
    data = event.properties
    kind = event.event.removeprefix("milepost.crm.")
    if kind == "account.upserted":
        attributes = data.get("attributes") or {}
        facts = {f"account.{k}": v for k, v in attributes.items() if _is_fact(v)}
        facts.update(
            {
                f"account.{k}": data[k]
                for k in ("name", "business_type", "industry", "region", "size")
                if data.get(k) is not None
            }
        )
        return facts
    if kind == "deal.stage_changed":
        return {"crm.deal_stage": data.get("stage"), "crm.deal_amount": _number(data.get("amount"))}
    if kind == "contract.signed":
        return {
            "crm.contract_status": "signed",
            "crm.contract_value": _number(data.get("value")),
            "crm.seats": data.get("seats"),
            "crm.renewal_at": _epoch(data.get("ends_on")),
        }
    if kind == "subscription.renewed":
        facts = {
            "crm.subscription_status": "active",
            "crm.renewal_at": _epoch(data.get("renewed_until")),
        }
        if data.get("seats") is not None:
            facts["crm.seats"] = data["seats"]
        return facts
    if kind == "subscription.cancelled":
        return {
            "crm.subscription_status": "cancelled",
            "crm.cancels_at": _epoch(data.get("effective_on")),
        }
    if kind == "invoice.paid":
        return {"crm.invoice_status": "paid"}
    if kind == "invoice.overdue":
        return {"crm.invoice_status": "overdue", "crm.days_overdue": data.get("days_overdue")}
    return {}


def _is_fact(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_FACT_TEXT
    return value is None or isinstance(value, bool | int | float)


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _epoch(value: Any) -> int | None:
    """A date (end of a contract) as the epoch seconds of its midnight, UTC."""
    if not isinstance(value, str):
        return None
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return int(datetime.combine(day, time(), tzinfo=UTC).timestamp())
