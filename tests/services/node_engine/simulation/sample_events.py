"""The sample events of docs/examples/platform-merchant-events.jsonl, and larger histories.

Five merchants settle into a marketplace over four weeks, each in its own way (see
``sample``), plus one event from a user of no known account. Regenerate the sample with
``python -m tests.services.node_engine.simulation.sample_events``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.contracts.events import EventEnvelope, EventType, event_id_for

WORKSPACE = "ws_example"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SAMPLE = Path(__file__).parents[4] / "docs" / "examples" / "platform-merchant-events.jsonl"


class Merchant:
    """Builds one merchant's events; times are days (and fractions) after ``start``."""

    def __init__(self, account: str, start: datetime, events: list[EventEnvelope]) -> None:
        self.account = account
        self.start = start
        self.events = events
        self.owner = f"{account}-owner"

    def envelope(
        self, day: float, kind: EventType, name: str | None, user: str, **fields: Any
    ) -> None:
        at = self.start + timedelta(days=day)
        message_id = f"{self.account}-{len(self.events)}-{kind.value}"
        self.events.append(
            EventEnvelope(
                event_id=event_id_for(WORKSPACE, message_id),
                workspace_id=WORKSPACE,
                message_id=message_id,
                type=kind,
                event=name,
                user_id=user,
                timestamp=at,
                received_at=at,
                source="segment",
                **fields,
            )
        )

    def join(self, day: float, user: str, roles: list[str], **traits: Any) -> None:
        """A group call: the user joins the merchant in these roles."""
        self.envelope(
            day,
            EventType.GROUP,
            None,
            user,
            account_id=self.account,
            traits={"name": self.account.title(), **traits},
            context={"traits": {"roles": roles}},
        )

    def track(self, day: float, name: str, *, user: str | None = None, **properties: Any) -> None:
        self.envelope(
            day,
            EventType.TRACK,
            name,
            user or self.owner,
            account_id=self.account,
            properties=properties,
        )

    def settle(self, day: float, *, approved: float, profile: float) -> None:
        self.join(day, self.owner, ["decision_maker", "admin"])
        self.track(day, "Merchant Registered")
        self.track(approved, "Merchant Approved")
        self.track(profile, "Profile Completed")

    def orders(
        self, rng: random.Random, first: float, last: float, per_day: int, *, user: str | None
    ) -> None:
        day = first
        while day <= last:
            for n in range(per_day):
                at = day + 0.05 + n * (0.6 / per_day)
                amount = rng.randrange(300, 1200)
                if user is None:
                    self.track(at, "Order Completed", amount=amount)
                else:  # sent by the cashier's app: a user id and no account
                    self.envelope(
                        at,
                        EventType.TRACK,
                        "Order Completed",
                        user,
                        properties={"amount": amount},
                    )
            day += 1


def sample(seed: int = 7, start: datetime = START, prefix: str = "") -> list[EventEnvelope]:
    """Five merchants over four weeks, in time order."""
    rng = random.Random(seed)
    events: list[EventEnvelope] = []

    # Lotus: quick through setup, then 3 orders a day: fifteen in a week, established, L2
    lotus = Merchant(f"{prefix}lotus", start, events)
    lotus.settle(0, approved=0.1, profile=0.2)
    lotus.track(1, "Payout Account Connected")
    lotus.track(1.2, "Listing Published")
    lotus.orders(rng, 2, 24, 3, user=None)

    # Harbor: a day late on its profile (overdue), then one order a day: ten orders on
    # day 15, never fifteen in a week, so the incentive node runs out
    harbor = Merchant(f"{prefix}harbor", start, events)
    harbor.settle(0.1, approved=1.0, profile=2.3)
    harbor.track(3, "Payout Account Connected")
    harbor.track(4, "Listing Published")
    harbor.orders(rng, 6, 27, 1, user=None)

    # Quiet: payouts handled by the platform (skipped), profile after the 3-day
    # escalation, and no listing at all: overdue on day 3, a task for the account manager
    quiet = Merchant(f"{prefix}quiet", start, events)
    quiet.join(0.2, quiet.owner, ["decision_maker", "admin"], payout_managed=True)
    quiet.track(0.2, "Merchant Registered")
    quiet.track(0.4, "Merchant Approved")
    quiet.track(4.5, "Profile Completed")

    # Pending: registered, never approved
    pending = Merchant(f"{prefix}pending", start, events)
    pending.track(1.5, "Merchant Registered")

    # Ember: the orders come from the cashier's app with only a user id; one order's
    # amount is not a number (a condition failure on this account)
    ember = Merchant(f"{prefix}ember", start, events)
    ember.settle(2, approved=2.2, profile=2.4)
    ember.join(2.5, f"{prefix}ember-cashier", ["end_user"])
    ember.track(3, "Payout Account Connected")
    ember.track(3.5, "Listing Published")
    ember.orders(rng, 5, 26, 2, user=f"{prefix}ember-cashier")
    ember.envelope(
        12.7,
        EventType.TRACK,
        "Order Completed",
        f"{prefix}ember-cashier",
        properties={"amount": "n/a"},
    )

    stranger = Merchant(f"{prefix}nobody", start, events)
    stranger.envelope(3, EventType.TRACK, "Order Completed", f"{prefix}stranger")
    return sorted(events, key=lambda e: e.timestamp)


def history(count: int, seed: int = 11) -> Iterator[bytes]:
    """About ``count`` events as JSONL lines: copies of the sample, each under other
    account names and shifted by a few hours."""
    produced = 0
    copy = 0
    while produced < count:
        shift = START + timedelta(hours=copy % 72)
        for event in sample(seed + copy, shift, prefix=f"c{copy}-"):
            yield event.model_dump_json(exclude_none=True).encode()
            produced += 1
            if produced >= count:
                return
        copy += 1


def lines() -> list[str]:
    return [event.model_dump_json(exclude_none=True) for event in sample()]


if __name__ == "__main__":
    SAMPLE.write_text("\n".join(lines()) + "\n")
    print(f"wrote {SAMPLE}")
