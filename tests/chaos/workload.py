"""The fault suite's workload: seeded, realistic, and the same for every run of a seed.

Accounts of both business types come from the engine benchmark's journeys (a merchant
joins, is approved, completes its profile, lists and sells; a SaaS company moves through
deal stages, signs, pays and rolls out), in four kinds: growing merchants and companies,
and declining ones (a high-priority ticket, an overdue invoice, a cancelled subscription).
Every account gets contacts in every role (CRM contacts and identify calls). Segment calls
go to ``/v1/batch``, CRM facts as CloudEvents to ``/v1/crm/events``.

Each account belongs to one *lane* (a client sending in order, as one Segment SDK queue
does), so an account's events reach ingest in order even when requests are retried.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.contracts.crm import (
    ContactRole,
    ContactUpserted,
    InvoiceOverdue,
    SubscriptionCancelled,
    TicketOpened,
)
from shared.contracts.events import EventEnvelope, EventType
from tests.benchmarks.engine import _Journeys

SEGMENT = "/v1/batch"
CRM = "/v1/crm/events"
JOURNEY_EPOCH = 1_900_000_000.0
"""The journeys' "now": their event times only order the accounts' events (each request
is stamped when it is first sent), so a fixed one keeps the workload reproducible."""
KINDS = ("growing merchant", "growing company", "declining merchant", "declining company")


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request's items; ``due`` is its offset in the schedule, in events."""

    lane: int
    path: str
    items: tuple[dict[str, Any], ...]
    due: int

    @property
    def message_ids(self) -> list[str]:
        return [message_id(item) for item in self.items]


@dataclass(frozen=True, slots=True)
class Workload:
    seed: int
    requests: tuple[Request, ...]
    accounts: Counter[str]
    """Accounts by kind."""
    events: Counter[str]
    """Events by type."""

    @property
    def size(self) -> int:
        return sum(len(request.items) for request in self.requests)


def message_id(item: dict[str, Any]) -> str:
    """Ingest's message id of a Segment call or a CloudEvent."""
    return item["messageId"] if "messageId" in item else f"{item['source']}#{item['id']}"


def workload(seed: int, accounts: int, *, workspace: str, lanes: int, batch: int) -> Workload:
    """``accounts`` accounts, a quarter of each kind, interleaved as their journeys go."""
    rng = random.Random(seed)
    journeys = _Journeys(rng, workspace, JOURNEY_EPOCH, f"s{seed}")
    timed: list[tuple[datetime, int, EventEnvelope]] = []
    kinds: Counter[str] = Counter()
    for index in range(accounts):
        kind = KINDS[index % len(KINDS)]
        kinds[kind] += 1
        events = _account(journeys, rng, index, kind)
        timed.extend((e.timestamp, len(timed), e) for e in events)
    timed.sort(key=lambda item: (item[0], item[1]))
    items = [(_lane(e, lanes), _http_item(e)) for _, _, e in timed]
    return Workload(seed, _batched(items, batch), kinds, journeys.kinds)


def _account(journeys: _Journeys, rng: random.Random, index: int, kind: str) -> list[Any]:
    merchant = kind.endswith("merchant")
    events = journeys.merchant(index) if merchant else journeys.company(index)
    account = events[0].account_id or ""
    at = events[-1].timestamp.timestamp()
    events.extend(_contacts(journeys, account, at))
    if kind.startswith("declining"):
        events.extend(_decline(journeys, rng, account, at, merchant=merchant))
    return events


def _contacts(journeys: _Journeys, account: str, at: float) -> list[EventEnvelope]:
    """A CRM contact in each role, and the end user's identify call."""
    out = []
    for role in ContactRole:
        at = journeys.later(at, shortest=60, longest=3_600)
        person = f"{account}-{role.value}"
        contact = ContactUpserted(
            account_id=account,
            contact_id=person,
            name=f"{role.value.replace('_', ' ').title()} of {account}",
            email=f"{role.value}@{account}.example",
            roles=[role],
        )
        out.append(journeys.crm(at, "milepost.crm.contact.upserted", contact))
    out.append(journeys.identify(account, f"{account}-end_user", at, [ContactRole.END_USER]))
    return out


def _decline(
    journeys: _Journeys, rng: random.Random, account: str, at: float, *, merchant: bool
) -> list[EventEnvelope]:
    """A ticket, an overdue invoice and (a company) a cancelled subscription."""
    at = journeys.later(at)
    ticket = TicketOpened(
        account_id=account,
        ticket_id=f"t-{account}",
        subject="Payouts failing" if merchant else "Reports are slow",
        priority="high",
        contact_id=f"{account}-admin",
    )
    day = date(2030, 1, 1) + timedelta(days=rng.randrange(300))
    overdue = InvoiceOverdue(
        account_id=account,
        invoice_id=f"od-{account}",
        amount=round(rng.uniform(100, 9_000), 2),  # type: ignore[arg-type]
        currency="USD",
        due_on=day,
        days_overdue=rng.randint(15, 60),
    )
    out = [
        journeys.crm(at, "milepost.crm.ticket.opened", ticket),
        journeys.crm(journeys.later(at), "milepost.crm.invoice.overdue", overdue),
    ]
    if not merchant:
        cancelled = SubscriptionCancelled(
            account_id=account,
            subscription_id=f"sub-{account}",
            effective_on=day + timedelta(days=30),
            reason="budget cuts",
        )
        out.append(
            journeys.crm(journeys.later(at), "milepost.crm.subscription.cancelled", cancelled)
        )
    return out


def _lane(event: EventEnvelope, lanes: int) -> int:
    return zlib.crc32((event.account_id or event.user_id or "").encode()) % lanes


def _http_item(event: EventEnvelope) -> dict[str, Any]:
    """What a Segment SDK or a CRM connector sends for ``event`` (without its timestamp)."""
    if event.type is EventType.CRM:
        source, _, ident = event.message_id.partition("#")
        return {
            "specversion": "1.0",
            "id": ident,
            "source": source,
            "type": event.event,
            "data": event.properties,
        }
    call: dict[str, Any] = {
        "type": event.type.value,
        "messageId": event.message_id,
        "userId": event.user_id,
        "context": event.context,
    }
    if event.type is EventType.TRACK:
        call |= {"event": event.event, "properties": event.properties}
    elif event.type is EventType.GROUP:
        call |= {"groupId": event.account_id, "traits": event.traits}
    else:
        call |= {"traits": event.traits}
    return call


def _batched(items: list[tuple[int, dict[str, Any]]], size: int) -> tuple[Request, ...]:
    """Per lane, consecutive items for the same endpoint, up to ``size`` a request; a
    request is due when its last item is."""
    open_: dict[int, Request] = {}
    requests: list[Request] = []
    for due, (lane, item) in enumerate(items):
        path = CRM if "specversion" in item else SEGMENT
        current = open_.pop(lane, None)
        if current is not None and current.path != path:
            requests.append(current)
            current = None
        grown = Request(lane, path, (*current.items, item) if current else (item,), due)
        if len(grown.items) == size:
            requests.append(grown)
        else:
            open_[lane] = grown
    requests.extend(open_.values())
    return tuple(sorted(requests, key=lambda r: r.due))


def stamped(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``item`` with the time an SDK stamps when it first sends it."""
    if "specversion" in item:
        return {**item, "time": now.isoformat()}
    return {**item, "timestamp": now.isoformat()}


def utc_now() -> datetime:
    return datetime.now(UTC)
