"""What scoring knows about one account at one moment: the plain input of health and signals.

Metric names follow one scheme, built from the workspace's metric definitions by
:func:`services.scoring.evaluation.snapshot.build_snapshot` (docs/scoring.md, "Snapshot
names"):

* a windowed metric ``<id>`` over each of its windows: ``<id>_1d``, ``<id>_7d``, ``<id>_28d``,
  ``<id>_90d``;
* its baselines: ``<id>_28d_weekly_avg`` (the 7-day figure averaged over the 4 weeks before
  this one), ``<id>_28d_daily_avg`` (the 1-day figure over the 28 days before today) and
  ``<id>_28d_ago`` (the 28-day figure of the 28 days before);
* a ``fact`` or ``last_seen`` metric: ``<id>`` (its value, or days since);
* derived figures: ``features_used_28d``, ``days_since_last_contact``, ``open_tickets``.

The constants below are the names health and the signals read; they assume the reference
metric ids (``services/scoring/reference/metrics.yaml``). A metric the account does not
have is absent or ``None`` and the component or signal that needs it is left out, never
guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

DAY = 86400

LOGINS_7D = "logins_7d"
LOGINS_28D_WEEKLY_AVG = "logins_28d_weekly_avg"
ACTIONS_PER_ACTIVE_USER_7D = "core_actions_per_active_user_7d"
FEATURES_USED_28D = "features_used_28d"
ACTIVE_SEATS_28D = "active_seats_28d"
PAID_SEATS = "paid_seats"
OPEN_TICKETS = "open_tickets"
EXPORT_ROWS_7D = "export_rows_7d"
EXPORT_ROWS_28D_WEEKLY_AVG = "export_rows_28d_weekly_avg"
API_CALLS_1D = "api_calls_1d"
API_CALLS_28D_DAILY_AVG = "api_calls_28d_daily_avg"
DAYS_SINCE_LAST_CONTACT = "days_since_last_contact"
"""Days since the account last asked for a feature, opened a ticket or talked to the team."""
SEAT_UTILISATION = "seat_utilisation_28d"
"""Share of paid seats active in the last 28 days, 0..1."""
SEAT_UTILISATION_28D_AGO = "seat_utilisation_28d_ago"

INVOICE_STATUS = "crm.invoice_status"
RENEWAL_AT = "crm.renewal_at"
"""Epoch seconds."""
BUSINESS_TYPE = "account.business_type"
TIER = "account.tier"

DECISION_MAKER = "decision_maker"
ADMIN = "admin"


class AccountSnapshot(msgspec.Struct, frozen=True, gc=False):
    """One account's metrics, CRM and account facts, and role activity, read at ``now``."""

    metrics: Mapping[str, float | None] = msgspec.field(default_factory=dict)
    facts: Mapping[str, Any] = msgspec.field(default_factory=dict)
    last_seen_days: Mapping[str, float | None] = msgspec.field(default_factory=dict)
    now: int = 0

    def metric(self, name: str) -> float | None:
        value = self.metrics.get(name)
        return None if value is None else float(value)

    def days_to_renewal(self, now: int) -> float | None:
        """Days from ``now`` until ``crm.renewal_at`` (negative once passed); ``None`` when
        unknown."""
        at = self.facts.get(RENEWAL_AT)
        if isinstance(at, bool) or not isinstance(at, int | float):
            return None
        return (float(at) - now) / DAY


@dataclass(frozen=True, slots=True)
class Ramp:
    """A linear map to 0..1: ``zero_at`` and beyond scores 0, ``full_at`` and beyond scores 1.

    ``full_at`` may be below ``zero_at`` for inputs where less is better (open tickets)."""

    zero_at: float
    full_at: float

    def __post_init__(self) -> None:
        if self.zero_at == self.full_at:
            raise ValueError("a ramp needs two different ends")

    def __call__(self, value: float) -> float:
        share = (value - self.zero_at) / (self.full_at - self.zero_at)
        return min(1.0, max(0.0, share))
