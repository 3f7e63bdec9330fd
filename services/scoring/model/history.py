"""Labelled history: event envelopes grouped by account, as metrics see them, with churn. Pure.

Events are attributed to accounts and become :class:`MetricEvent` values exactly as the
scoring worker makes them: the envelope's account, else the account the user joined; the
actor's roles from ``group``, ``identify`` and CRM contact events; an unnamed call is
named by its type; the numeric account facts the event states. Churn is a CRM fact: an account churns when a
``milepost.crm.subscription.cancelled`` event is recorded, at that event's time (not its
``effective_on`` date: the decision is known when it is recorded, and snapshots after it
would see it). A later ``milepost.crm.contract.signed`` or
``milepost.crm.subscription.renewed`` makes the account active again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.scoring.definitions import MetricEvent
from services.scoring.evaluation.facts import numeric, stated_facts
from shared.contracts.events import EventEnvelope, EventType
from shared.identity import Membership, attribute

CANCELLED = "milepost.crm.subscription.cancelled"
"""The CRM event that marks a churn."""
ACTIVATING = frozenset({"milepost.crm.contract.signed", "milepost.crm.subscription.renewed"})
"""CRM events after which a cancelled account counts as active again."""

AccountKey = tuple[str, str]
"""(workspace id, account id)."""


@dataclass(frozen=True, slots=True)
class AccountHistory:
    """One account's events in time order and its subscription status changes.

    ``status_changes`` holds (epoch seconds, active) pairs in time order; ``first_at`` is
    the time of the account's first event.
    """

    workspace_id: str
    account_id: str
    events: tuple[MetricEvent, ...]
    status_changes: tuple[tuple[int, bool], ...] = ()

    @property
    def first_at(self) -> int:
        return self.events[0].occurred_at

    @property
    def churned_at(self) -> tuple[int, ...]:
        """Times the account went from active to cancelled."""
        times: list[int] = []
        active = True
        for at, now_active in self.status_changes:
            if active and not now_active:
                times.append(at)
            active = now_active
        return tuple(times)

    def cancelled_at(self, at: int) -> bool:
        """Whether the account stands cancelled at ``at`` (a change at ``at`` counts)."""
        active = True
        for changed, now_active in self.status_changes:
            if changed > at:
                break
            active = now_active
        return not active


@dataclass(frozen=True, slots=True)
class History:
    """Accounts' histories, the time of the latest event (``end``: where the data stops, so
    where labels stop being observable), and how many events had no account."""

    accounts: Mapping[AccountKey, AccountHistory] = field(default_factory=dict)
    end: int = 0
    unattributed: int = 0


def history_of(envelopes: Iterable[EventEnvelope]) -> History:
    """Group ``envelopes`` (in time order) by account. Attribution follows the order given."""
    memberships: dict[tuple[str, str], Membership] = {}
    events: dict[AccountKey, list[MetricEvent]] = {}
    changes: dict[AccountKey, list[tuple[int, bool]]] = {}
    end = 0
    unattributed = 0
    for envelope in envelopes:
        user = (envelope.workspace_id, envelope.user_id or "")
        attribution = attribute(envelope, memberships.get(user))
        if attribution.learned is not None and envelope.user_id is not None:
            memberships[user] = attribution.learned
        at = int(envelope.timestamp.timestamp())
        end = max(end, at)
        if attribution.account_id is None:
            unattributed += 1
            continue
        key = (envelope.workspace_id, attribution.account_id)
        events.setdefault(key, []).append(
            MetricEvent(
                name=envelope.event or envelope.type.value,
                occurred_at=at,
                user_id=envelope.user_id,
                actor_roles=attribution.actor_roles,
                properties=envelope.properties,
                facts=numeric(stated_facts(envelope)),
            )
        )
        if envelope.type is EventType.CRM and envelope.event == CANCELLED:
            changes.setdefault(key, []).append((at, False))
        elif envelope.type is EventType.CRM and envelope.event in ACTIVATING:
            changes.setdefault(key, []).append((at, True))
    accounts = {
        key: AccountHistory(
            key[0],
            key[1],
            tuple(sorted(found, key=lambda e: e.occurred_at)),
            tuple(sorted(changes.get(key, ()), key=lambda c: c[0])),
        )
        for key, found in events.items()
    }
    return History(accounts, end, unattributed)
