"""Contact-pressure budgets with priority arbitration. Pure.

Two caps apply across every playbook in a rolling window (``MILEPOST_MESSAGING_BUDGET_*``):
messages per contact, and messages per account and role (so the admins of one account
together get no more than their cap). A message counts in the window from when it is
planned to be sent; deferred messages count too.

Arbitration reserves headroom for what matters more. A message is refused when its cap is
full (every message counts, critical ones too), or when the messages it **competes with**
(those of its own priority or lower) already fill its priority's share of the cap:

========== ======================================
priority   share of each cap it may fill
========== ======================================
low        half (rounded down, at least one)
normal     four fifths (rounded down, at least one)
high       all of it
critical   exempt: always planned, still counted
========== ======================================

A higher-priority message does not use up a lower priority's share: with a cap of 3, a
welcome (normal) and a high-priority nudge leave room for one more normal message (1 of
its 2), and the cap itself stops a fourth. When a contact's budget is nearly full, tips
(``low``) are suppressed first, then ``normal`` messages, while a renewal-risk message
(``high``) still gets the last slots. A message over its share is suppressed with the
reason, never deferred: a nudge that comes a week late is noise.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.messaging.playbooks.files import PRIORITIES, Priority

SHARES: dict[Priority, float | None] = {"low": 0.5, "normal": 0.8, "high": 1.0, "critical": None}
PRIORITY_RANK: dict[Priority, int] = {"low": 0, "normal": 1, "high": 2, "critical": 3}


def priority_of(rank: int) -> Priority:
    """The priority a send order stands for (beyond the ranks: the nearest one)."""
    return PRIORITIES[min(max(rank, 0), len(PRIORITIES) - 1)]


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    per_contact: int
    per_account_role: int
    window: timedelta


@dataclass(frozen=True, slots=True)
class Load:
    """Messages planned in the window under one cap: all of them, and those a message
    competes with (of its priority or lower)."""

    total: int
    competing: int


@dataclass(frozen=True, slots=True)
class Pressure:
    """Messages already planned in the window: to this contact, and to this account's
    holders of the role the message is for."""

    contact: Load
    account_role: Load


@dataclass(frozen=True, slots=True)
class Planned:
    """A message counted by the budgets: to whom, as which role, when it goes out, and at
    which priority."""

    workspace_id: str
    account_id: str
    contact_id: str
    role: str
    at: datetime
    priority: Priority


class PressureBook:
    """The messages a batch counts against: those already planned in the window (loaded
    once) plus those the batch plans, indexed by contact and by account and role."""

    def __init__(self, planned: Iterable[Planned] = ()) -> None:
        self.by_contact: dict[tuple[str, str], list[tuple[datetime, int]]] = defaultdict(list)
        self.by_role: dict[tuple[str, str, str], list[tuple[datetime, int]]] = defaultdict(list)
        for item in planned:
            self.add(item)

    def add(self, item: Planned) -> None:
        entry = (item.at, PRIORITY_RANK[item.priority])
        self.by_contact[(item.workspace_id, item.contact_id)].append(entry)
        self.by_role[(item.workspace_id, item.account_id, item.role)].append(entry)

    def pressure(self, item: Planned, window: timedelta) -> Pressure:
        """What is planned to go out after ``item.at - window``, to its contact and to its
        account's holders of its role: all of it, and what ``item`` competes with."""
        since, rank = item.at - window, PRIORITY_RANK[item.priority]

        def load(entries: Iterable[tuple[datetime, int]]) -> Load:
            ranks = [r for at, r in entries if at > since]
            return Load(len(ranks), sum(1 for r in ranks if r <= rank))

        return Pressure(
            contact=load(self.by_contact.get((item.workspace_id, item.contact_id), ())),
            account_role=load(
                self.by_role.get((item.workspace_id, item.account_id, item.role), ())
            ),
        )


def allowed(cap: int, priority: Priority) -> int | None:
    """How much of ``cap`` a message of ``priority`` may fill; ``None``: exempt."""
    share = SHARES[priority]
    if share is None:
        return None
    return max(1, math.floor(cap * share)) if cap > 0 else 0


def budget_refusal(
    pressure: Pressure, *, priority: Priority, role: str, limits: BudgetLimits
) -> str | None:
    """Why one more message of ``priority`` would exceed a budget; ``None`` when it fits."""
    for load, cap, scope in (
        (pressure.contact, limits.per_contact, "the contact"),
        (pressure.account_role, limits.per_account_role, f"the account's {role} contacts"),
    ):
        share = allowed(cap, priority)
        if share is None:
            continue
        window = _window(limits.window)
        if load.total >= cap:
            return (
                f"budget: {_messages(load.total)} already planned for {scope} in {window}, the cap"
            )
        if load.competing >= share:
            return (
                f"budget: {_messages(load.competing)} of {priority} priority or lower already "
                f"planned for {scope} in {window}; {priority} priority may fill {share} of {cap}"
            )
    return None


def _messages(count: int) -> str:
    return f"{count} message{'s' if count != 1 else ''}"


def _window(window: timedelta) -> str:
    days = window.total_seconds() / 86400
    return f"{days:g} days" if days >= 1 else f"{window.total_seconds() / 3600:g} hours"
