"""A small platform-merchant portfolio for the console's tests: merchants at every stage of
the reference growth path, with contacts in roles, then two days and more on the sandbox
clock so nodes go overdue, escalations open tasks and outreach is planned."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from services.messaging.contacts.directory import owner_contact_id

WAIT_SECONDS = 90

# account -> (contact, role, the events it does in order; "order" is one completed order)
MERCHANTS: dict[str, tuple[str, str, list[str]]] = {
    "lotus": ("ann", "admin", []),
    "peony": ("bo", "admin", []),
    "orchid": ("cai", "decision_maker", ["Merchant Approved"]),
    "camellia": ("dan", "admin", ["Merchant Approved"]),
    "jasmine": ("eve", "admin", ["Merchant Approved", "Profile Completed"]),
    "magnolia": (
        "fay",
        "admin",
        ["Merchant Approved", "Profile Completed", "Payout Account Connected"],
    ),
    "azalea": (
        "gus",
        "admin",
        ["Merchant Approved", "Profile Completed", "Payout Account Connected", "Listing Published"],
    ),
    "begonia": (
        "hal",
        "admin",
        ["Merchant Approved", "Profile Completed", "Payout Account Connected", "Listing Published"]
        + ["order"] * 3,
    ),
}


def calls() -> list[dict[str, Any]]:
    """The tracking calls that put every merchant where :data:`MERCHANTS` says."""
    found: list[dict[str, Any]] = []
    for account, (user, role, events) in MERCHANTS.items():
        found.append(
            {
                "type": "identify",
                "userId": user,
                "traits": {"email": f"{user}@{account}.example", "name": user.title()},
            }
        )
        found.append(
            {
                "type": "group",
                "userId": user,
                "groupId": account,
                "traits": {"business_type": "platform", "name": account.title()},
                "context": {"traits": {"role": role}},
            }
        )
        for event in events:
            order = event == "order"
            found.append(
                {
                    "type": "track",
                    "userId": user,
                    "event": "Order Completed" if order else event,
                    "properties": {"amount": 120} if order else {},
                    "context": {"groupId": account},
                }
            )
    return found


OWNERS = (("li.na@ops.example", "Li Na"), ("wang.lei@ops.example", "Wang Lei"))
CANCELLED = frozenset({"peony", "camellia", "azalea"})
"""The merchants whose subscription ended; the others renewed."""


def crm_events(today: date) -> list[dict[str, Any]]:
    """Each merchant's owner, and a one-year contract ended in one of the last four quarters,
    renewed or cancelled: what the portfolio's renewal, NRR and LTV:CAC figures read."""
    found: list[dict[str, Any]] = []
    for index, account in enumerate(MERCHANTS):
        owner_email, owner_name = OWNERS[index % len(OWNERS)]
        ended = today - timedelta(days=20 + 90 * (index % 4))
        data: list[tuple[str, dict[str, Any]]] = [
            (
                "account.upserted",
                {"name": account.title(), "owner_email": owner_email, "owner_name": owner_name},
            ),
            (
                "contract.signed",
                {
                    "contract_id": f"c-{account}",
                    "value": str(6000 + 1500 * index),
                    "currency": "CNY",
                    "starts_on": (ended - timedelta(days=365)).isoformat(),
                    "ends_on": ended.isoformat(),
                    "acquisition_cost": "3000",
                },
            ),
            (
                "subscription.cancelled",
                {"subscription_id": f"s-{account}", "effective_on": ended.isoformat()},
            )
            if account in CANCELLED
            else (
                "subscription.renewed",
                {
                    "subscription_id": f"s-{account}",
                    "renewed_until": (ended + timedelta(days=365)).isoformat(),
                },
            ),
        ]
        for kind, fields in data:
            found.append(
                {
                    "specversion": "1.0",
                    "id": f"{kind}-{account}",
                    "source": "crm-seed",
                    "type": f"milepost.crm.{kind}",
                    "data": {"account_id": account, **fields},
                }
            )
    return found


def eventually(check: Callable[[], Any], what: str) -> Any:
    """``check()``'s first truthy answer, asked until it gives one."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"not seen within {WAIT_SECONDS}s: {what}")


def seed(admin: httpx.Client, write_key: str) -> None:
    """Tell messaging each merchant's owner and contact before anything the merchant did
    (planning reads that directory when a trigger comes, and it is fed apart from the
    engine), wait until the engine placed every merchant, move the sandbox clock three days
    on and wait for the overdue nodes and an escalation task for each owner."""
    facts = admin.post(
        "/v1/crm/events",
        json=crm_events(datetime.now(UTC).date()),
        auth=(write_key, ""),
        headers={"Content-Type": "application/cloudevents-batch+json"},
    )
    assert facts.status_code == 200, facts.text
    _send(admin, write_key, [call for call in calls() if call["type"] != "track"])
    eventually(lambda: _directory_complete(admin), "every merchant's contact and owner")
    _send(admin, write_key, [call for call in calls() if call["type"] == "track"])

    def placed() -> bool:
        funnel = admin.get("/api/engine/workspaces/demo/paths/platform-merchant/funnel").json()
        return bool(funnel["accounts"] == len(MERCHANTS))

    eventually(placed, "every merchant on the path")
    eventually(lambda: _entered_everywhere(admin), "every merchant at its node")
    moved = admin.post("/api/sandbox/clock/advance", json={"by": "P3DT1H"})
    assert moved.status_code == 200, moved.text
    eventually(
        lambda: admin.get("/api/engine/workspaces/demo/paths/platform-merchant/overdue").json()[
            "nodes"
        ],
        "overdue nodes",
    )
    eventually(lambda: _tasks_for_every_owner(admin), "an escalation task for each owner")


def _send(admin: httpx.Client, write_key: str, found: list[dict[str, Any]]) -> None:
    for call in found:
        sent = admin.post(f"/v1/{call['type']}", json=call, auth=(write_key, ""))
        assert sent.status_code == 200, sent.text


def _directory_complete(admin: httpx.Client) -> bool:
    """Messaging knows every merchant's contact in its role and its owner: what planning
    reads once the clock moves (its directory is fed apart from the engine)."""
    base = "/api/messaging/workspaces/demo"
    owners = admin.get(f"{base}/owners", params={"account": list(MERCHANTS)}).json()
    if {owner["account_id"] for owner in owners} != set(MERCHANTS):
        return False
    for account, (user, role, _) in MERCHANTS.items():
        page = admin.get(f"{base}/contacts", params={"account": account, "role": role}).json()
        if user not in {contact["contact_id"] for contact in page["items"]}:
            return False
    return True


def _tasks_for_every_owner(admin: httpx.Client) -> bool:
    answer = admin.get("/api/messaging/workspaces/demo/tasks", params={"status": "open"})
    owners = {task["owner_contact_id"] for task in answer.json()["items"]}
    return owners >= {owner_contact_id(email) for email, _ in OWNERS}


def _entered_everywhere(admin: httpx.Client) -> bool:
    for account, (_, _, events) in MERCHANTS.items():
        answer = admin.get(f"/api/engine/workspaces/demo/accounts/{account}")
        if answer.status_code != 200:
            return False
        if events and not any(
            n["status"] == "completed" for n in answer.json()["paths"][0]["nodes"]
        ):
            return False
    return True
