"""The health components: each maps its inputs to 0..1 by documented, configurable thresholds.

Defaults (every threshold is a field of :class:`Thresholds`):

* usage depth: core actions per active user in 7 days, 0 at 0, full at 20;
* usage breadth: distinct features used in 28 days, 0 at 1, full at 8;
* seat activation: active seats in 28 days / paid seats, 0 at 20%, full at 80%;
* login trend: logins in 7 days / the 28-day weekly average, 0 at 0.5x, full at 1.0x
  (no baseline: left out);
* support load: open tickets, full at 0, 0 at 5;
* billing state: by ``crm.invoice_status`` (paid 1, open 0.8, overdue 0; other: left out);
* relationship: mean over decision maker and admin of days since last active, full at 14
  days, 0 at 60 (never active: 0; a role the account does not have: left out).

A component returns ``None`` when its inputs are missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

import msgspec

from services.scoring.health import snapshot as s
from services.scoring.health.snapshot import AccountSnapshot, Ramp


class Component(StrEnum):
    USAGE_DEPTH = "usage_depth"
    USAGE_BREADTH = "usage_breadth"
    SEAT_ACTIVATION = "seat_activation"
    LOGIN_TREND = "login_trend"
    SUPPORT_LOAD = "support_load"
    BILLING_STATE = "billing_state"
    RELATIONSHIP = "relationship"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where each component scores 0 and where it scores full marks."""

    usage_depth: Ramp = field(default_factory=lambda: Ramp(0, 20))
    usage_breadth: Ramp = field(default_factory=lambda: Ramp(1, 8))
    seat_activation: Ramp = field(default_factory=lambda: Ramp(0.2, 0.8))
    login_trend: Ramp = field(default_factory=lambda: Ramp(0.5, 1.0))
    support_load: Ramp = field(default_factory=lambda: Ramp(5, 0))
    relationship_days: Ramp = field(default_factory=lambda: Ramp(60, 14))
    billing: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({"paid": 1.0, "open": 0.8, "overdue": 0.0})
    )


class Reading(msgspec.Struct, frozen=True, gc=False):
    """A component's value, 0..1, and what it was read from, in words."""

    value: float
    detail: str


def _num(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def _count(value: float, word: str) -> str:
    return f"{_num(value)} {word}" + ("" if value == 1 else "s")


def usage_depth(snap: AccountSnapshot, t: Thresholds) -> Reading | None:
    actions = snap.metric(s.ACTIONS_PER_ACTIVE_USER_7D)
    if actions is None:
        return None
    return Reading(
        t.usage_depth(actions), f"{_num(actions)} core actions per active user in 7 days"
    )


def usage_breadth(snap: AccountSnapshot, t: Thresholds) -> Reading | None:
    features = snap.metric(s.FEATURES_USED_28D)
    if features is None:
        return None
    return Reading(t.usage_breadth(features), f"{_num(features)} features used in 28 days")


def seat_activation(snap: AccountSnapshot, t: Thresholds) -> Reading | None:
    active, paid = snap.metric(s.ACTIVE_SEATS_28D), snap.metric(s.PAID_SEATS)
    if active is None or not paid:
        return None
    return Reading(
        t.seat_activation(active / paid),
        f"{_num(active)} of {_num(paid)} paid seats active in 28 days",
    )


def login_trend(snap: AccountSnapshot, t: Thresholds) -> Reading | None:
    recent, baseline = snap.metric(s.LOGINS_7D), snap.metric(s.LOGINS_28D_WEEKLY_AVG)
    if recent is None or not baseline:
        return None
    return Reading(
        t.login_trend(recent / baseline),
        f"{_num(recent)} logins in 7 days against a weekly average of {_num(baseline)}",
    )


def support_load(snap: AccountSnapshot, t: Thresholds) -> Reading | None:
    tickets = snap.metric(s.OPEN_TICKETS)
    if tickets is None:
        return None
    return Reading(t.support_load(tickets), _count(tickets, "open ticket"))


def billing_state(snap: AccountSnapshot, t: Thresholds) -> Reading | None:
    status = snap.facts.get(s.INVOICE_STATUS)
    if not isinstance(status, str) or status not in t.billing:
        return None
    return Reading(t.billing[status], f"invoice {status}")


def relationship(snap: AccountSnapshot, t: Thresholds) -> Reading | None:
    values: list[float] = []
    words: list[str] = []
    for role, name in ((s.DECISION_MAKER, "decision maker"), (s.ADMIN, "admin")):
        if role not in snap.last_seen_days:
            continue
        days = snap.last_seen_days[role]
        if days is None:
            values.append(0.0)
            words.append(f"{name} never active")
        else:
            values.append(t.relationship_days(days))
            words.append(f"{name} last active {_count(days, 'day')} ago")
    if not values:
        return None
    return Reading(sum(values) / len(values), ", ".join(words))


READERS: Mapping[Component, Callable[[AccountSnapshot, Thresholds], Reading | None]] = (
    MappingProxyType(
        {
            Component.USAGE_DEPTH: usage_depth,
            Component.USAGE_BREADTH: usage_breadth,
            Component.SEAT_ACTIVATION: seat_activation,
            Component.LOGIN_TREND: login_trend,
            Component.SUPPORT_LOAD: support_load,
            Component.BILLING_STATE: billing_state,
            Component.RELATIONSHIP: relationship,
        }
    )
)
