"""A seeded, synthetic labelled history: for tests and for trying the churn model. Pure.

Accounts sign up over the whole history (all but its last 150 days). Each signs a
contract (its seats), its people join with roles, and every day its
end users, admin and decision maker log in and create reports with a daily probability,
its *engagement*. Retained accounts keep a steady or growing engagement (a fifth of them
with a temporary dip, so a dip alone does not mean churn). Churning accounts churn at least 45 days
after signing up, with the same chance every day after that (300 days on average), and
fade for 60 to 120 days before a ``milepost.crm.subscription.cancelled`` event: fewer logins and
reports, the decision maker goes silent, tickets and feature requests stop, and full
data exports appear; 10% of them churn abruptly with no warning at all. Some churn dates
fall after the end of the history, so their decline is seen but not their cancellation.
The same seed gives the same events, ids and times.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from shared.contracts.crm import (
    ContractSigned,
    SubscriptionCancelled,
    SubscriptionRenewed,
    TicketOpened,
)
from shared.contracts.events import EventEnvelope, EventType, event_id_for

DEMO_WORKSPACE = "ws_demo"
DEMO_START = datetime(2025, 1, 1, tzinfo=UTC)
DEFAULT_ACCOUNTS = 150
DEFAULT_DAYS = 540
CHURN_SHARE = 0.45
ABRUPT_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class _Profile:
    signup: int
    end_users: int
    seats: int
    level: float
    growth: float
    churn_day: int | None
    decline_days: int
    dip: tuple[int, int] | None

    def engagement(self, day: int) -> float:
        grown = self.level * (1 + self.growth * (day - self.signup) / 365)
        if self.dip is not None and self.dip[0] <= day < self.dip[1]:
            grown *= 0.5
        fading = self.fading(day)
        if fading is not None:
            grown *= 0.1 + 0.9 * fading**2
        return min(0.95, max(0.0, grown))

    def fading(self, day: int) -> float | None:
        """1 at the start of the decline down to 0 at the churn; None outside a decline."""
        if self.churn_day is None or not self.decline_days:
            return None
        start = self.churn_day - self.decline_days
        return None if day < start else max(0.0, (self.churn_day - day) / self.decline_days)


def synthetic_history(
    *,
    seed: int = 7,
    accounts: int = DEFAULT_ACCOUNTS,
    days: int = DEFAULT_DAYS,
    start: datetime = DEMO_START,
    workspace_id: str = DEMO_WORKSPACE,
) -> list[EventEnvelope]:
    """Envelopes of ``accounts`` accounts over ``days`` days from ``start``, in time order."""
    envelopes: list[EventEnvelope] = []
    for number in range(1, accounts + 1):
        rng = random.Random(f"{seed}:{number}")  # noqa: S311 - synthetic data, not secrets
        writer = _Writer(workspace_id, f"demo-{number:03d}", start, rng)
        _account(writer, _profile(rng, days), days)
        envelopes.extend(writer.envelopes)
    envelopes.sort(key=lambda e: (e.timestamp, e.message_id))
    return envelopes


def _profile(rng: random.Random, days: int) -> _Profile:
    signup = rng.randrange(0, max(1, days - 150))
    end_users = rng.randint(2, 6)
    churns = rng.random() < CHURN_SHARE
    churn_day = signup + 45 + int(rng.expovariate(1 / 300)) if churns else None
    abrupt = churns and rng.random() < ABRUPT_SHARE
    dip_start = rng.randrange(signup, days) if not churns and rng.random() < 0.2 else None
    return _Profile(
        signup=signup,
        end_users=end_users,
        seats=end_users + rng.randint(0, 4),
        level=rng.uniform(0.35, 0.85),
        growth=0.0 if churns else rng.uniform(-0.05, 0.25),
        churn_day=churn_day,
        decline_days=0 if abrupt or not churns else rng.randint(60, 120),
        dip=None if dip_start is None else (dip_start, dip_start + rng.randint(20, 50)),
    )


def _account(writer: _Writer, profile: _Profile, days: int) -> None:
    users = _sign_up(writer, profile)
    last = days if profile.churn_day is None else min(days, profile.churn_day)
    for day in range(profile.signup, last):
        _day(writer, profile, users, day)
    if profile.churn_day is not None and profile.churn_day < days:
        writer.crm(
            profile.churn_day,
            "milepost.crm.subscription.cancelled",
            SubscriptionCancelled(
                account_id=writer.account,
                subscription_id=f"{writer.account}-s1",
                effective_on=writer.day(profile.churn_day) + timedelta(days=30),
                reason="not enough value",
            ),
        )


def _sign_up(writer: _Writer, profile: _Profile) -> list[tuple[str, str]]:
    """The account's users (the decision maker, the admin, then end users) with their roles,
    grouped on the signup day, and its contract signed."""
    users = [(f"{writer.account}-dm", "decision_maker"), (f"{writer.account}-admin", "admin")]
    users += [(f"{writer.account}-u{n}", "end_user") for n in range(profile.end_users)]
    for user, role in users:
        writer.segment(
            profile.signup, EventType.GROUP, None, user, context={"traits": {"roles": [role]}}
        )
    signed = writer.day(profile.signup)
    writer.crm(
        profile.signup,
        "milepost.crm.contract.signed",
        ContractSigned(
            account_id=writer.account,
            contract_id=f"{writer.account}-c1",
            value=Decimal(profile.seats * 600),
            currency="EUR",
            starts_on=signed,
            ends_on=signed + timedelta(days=365),
            seats=profile.seats,
        ),
    )
    return users


def _day(writer: _Writer, profile: _Profile, users: list[tuple[str, str]], day: int) -> None:
    """One day of the account's activity, tickets and renewal."""
    rng = writer.rng
    engagement = profile.engagement(day)
    fading = profile.fading(day)
    for user, _role in users[2:]:
        if rng.random() < engagement:
            writer.track(day, "Logged In", user)
            if rng.random() < 0.5:
                writer.track(day, "Report Created", user)
            if rng.random() < 0.05:
                writer.track(day, "Report Exported", user, {"rows": rng.randint(10, 500)})
    if rng.random() < min(1.0, engagement * 0.9):
        writer.track(day, "Logged In", users[1][0])
    if rng.random() < (0.12 if fading is None or fading > 0.7 else 0.01):
        writer.track(day, "Logged In", users[0][0])
    quiet = fading is not None and fading < 0.8
    if rng.random() < (0.003 if quiet else 0.015):
        writer.crm(
            day,
            "milepost.crm.ticket.opened",
            TicketOpened(account_id=writer.account, ticket_id=f"{writer.account}-t{day}"),
        )
    if not quiet and rng.random() < 0.01:
        writer.track(day, "Feature Requested", users[1][0])
    if rng.random() < (0.08 if fading is not None and fading < 0.25 else 0.002):
        writer.track(day, "Data Exported", users[1][0], {"scope": "account"})
    if day == profile.signup + 365:
        writer.crm(
            day,
            "milepost.crm.subscription.renewed",
            SubscriptionRenewed(
                account_id=writer.account,
                subscription_id=f"{writer.account}-s1",
                renewed_until=writer.day(day) + timedelta(days=365),
                seats=profile.seats,
            ),
        )


class _Writer:
    """Envelopes of one account, numbered in the order written, at seeded times of day."""

    def __init__(
        self, workspace_id: str, account: str, start: datetime, rng: random.Random
    ) -> None:
        self.workspace_id = workspace_id
        self.account = account
        self.start = start
        self.rng = rng
        self.envelopes: list[EventEnvelope] = []

    def day(self, day: int) -> date:
        return (self.start + timedelta(days=day)).date()

    def track(
        self, day: int, name: str, user: str, properties: Mapping[str, Any] | None = None
    ) -> None:
        self.segment(day, EventType.TRACK, name, user, properties=dict(properties or {}))

    def segment(
        self,
        day: int,
        kind: EventType,
        name: str | None,
        user: str,
        *,
        properties: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        self._add(day, kind, name, user, properties or {}, context or {}, "segment")

    def crm(self, day: int, name: str, fact: BaseModel) -> None:
        self._add(day, EventType.CRM, name, None, fact.model_dump(mode="json"), {}, "crm:demo")

    def _add(
        self,
        day: int,
        kind: EventType,
        name: str | None,
        user: str | None,
        properties: dict[str, Any],
        context: dict[str, Any],
        source: str,
    ) -> None:
        at = self.start + timedelta(
            days=day, hours=self.rng.randint(8, 18), minutes=self.rng.randrange(60)
        )
        message_id = f"{self.account}-{len(self.envelopes)}"
        self.envelopes.append(
            EventEnvelope.model_construct(  # valid by construction; every field given is faster
                schema_version=1,
                event_id=event_id_for(self.workspace_id, message_id),
                workspace_id=self.workspace_id,
                message_id=message_id,
                type=kind,
                event=name,
                account_id=self.account,
                user_id=user,
                anonymous_id=None,
                previous_id=None,
                properties=properties,
                traits={},
                context=context,
                timestamp=at,
                original_timestamp=None,
                sent_at=None,
                received_at=at,
                source=source,
            )
        )
