"""CRM facts as CloudEvents 1.0, structured, batch and binary modes."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
from cloudevents.core.bindings.http import to_binary_event
from cloudevents.core.v1.event import CloudEvent

from shared.contracts import EventType
from tests.services.ingest.conftest import RECEIVED_AT, Ingest

SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


def _cloud_event(event_id: str, kind: str, data: dict[str, object]) -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "//crm.example/hubspot",
        "type": f"milepost.crm.{kind}",
        "time": "2026-11-01T10:00:00Z",
        "data": data,
    }


async def _send(ingest: Ingest, body: object, content_type: str) -> httpx.Response:
    return await ingest.client.post(
        "/v1/crm/events",
        content=orjson.dumps(body),
        headers={**ingest.auth, "Content-Type": content_type},
    )


async def test_a_contact_with_roles_is_published_for_its_account(ingest: Ingest) -> None:
    event = _cloud_event(
        "c-1",
        "contact.upserted",
        {
            "account_id": "acme",
            "contact_id": "u-7",
            "roles": ["decision_maker", "admin"],
            "email": "ceo@acme.io",
            "chat_app_ids": {"feishu": "ou_123"},
            "locale": "zh-CN",
            "timezone": "Asia/Shanghai",
        },
    )
    response = await _send(ingest, event, SINGLE)
    assert response.status_code == 200
    [(key, envelope)] = await ingest.published()
    assert key.endswith(b"/a/acme")
    assert envelope.type is EventType.CRM
    assert envelope.event == "milepost.crm.contact.upserted"
    assert envelope.user_id == "u-7"
    assert envelope.properties["roles"] == ["decision_maker", "admin"]
    assert envelope.source == "crm://crm.example/hubspot"
    assert envelope.timestamp.isoformat() == "2026-11-01T10:00:00+00:00"
    assert envelope.received_at == RECEIVED_AT


async def test_a_batch_covers_every_crm_fact_and_reports_bad_ones(ingest: Ingest) -> None:
    facts: list[tuple[str, dict[str, object]]] = [
        ("account.upserted", {"account_id": "acme", "business_type": "service", "size": 120}),
        ("deal.stage_changed", {"account_id": "acme", "deal_id": "d1", "stage": "negotiation"}),
        (
            "contract.signed",
            {
                "account_id": "acme",
                "contract_id": "k1",
                "value": "24000",
                "currency": "CNY",
                "starts_on": "2026-11-01",
                "ends_on": "2027-10-31",
                "acquisition_cost": "6000",
            },
        ),
        (
            "subscription.renewed",
            {"account_id": "acme", "subscription_id": "s1", "renewed_until": "2028-10-31"},
        ),
        (
            "subscription.cancelled",
            {"account_id": "acme", "subscription_id": "s1", "effective_on": "2028-10-31"},
        ),
        (
            "invoice.paid",
            {"account_id": "acme", "invoice_id": "i1", "amount": "100", "currency": "USD"},
        ),
        (
            "invoice.overdue",
            {
                "account_id": "acme",
                "invoice_id": "i2",
                "amount": "100",
                "currency": "USD",
                "due_on": "2026-10-01",
                "days_overdue": 31,
            },
        ),
        ("ticket.opened", {"account_id": "acme", "ticket_id": "t1", "subject": "export is slow"}),
        ("ticket.closed", {"account_id": "acme", "ticket_id": "t1"}),
        ("contact.upserted", {"account_id": "acme", "contact_id": "u1", "roles": ["boss"]}),
        ("deal.exploded", {"account_id": "acme"}),
    ]
    batch = [_cloud_event(f"e{i}", kind, data) for i, (kind, data) in enumerate(facts)]
    response = await _send(ingest, batch, BATCH)
    body = response.json()
    assert response.status_code == 200
    assert body["accepted"] == 9
    rejected = {item["index"]: item["errors"][0]["field"] for item in body["rejected"]}
    assert rejected == {9: "events[9].data.roles[0]", 10: "events[10].type"}


async def test_cloud_event_attributes_are_required(ingest: Ingest) -> None:
    response = await _send(ingest, {"specversion": "0.3", "data": {}}, SINGLE)
    assert response.status_code == 400
    fields = {p["field"] for p in response.json()["errors"]}
    assert {"specversion", "id", "source", "type"} <= fields


async def test_the_same_cloud_event_twice_is_a_duplicate(ingest: Ingest) -> None:
    event = _cloud_event("same", "ticket.closed", {"account_id": "acme", "ticket_id": "t9"})
    await _send(ingest, event, SINGLE)
    again = await _send(ingest, event, SINGLE)
    assert again.json()["duplicates"] == 1
    assert len(await ingest.published()) == 1


async def test_plain_json_is_415_and_a_non_array_batch_is_400(ingest: Ingest) -> None:
    event = _cloud_event("x", "ticket.closed", {"account_id": "acme", "ticket_id": "t9"})
    wrong_type = await _send(ingest, event, "application/json")
    assert wrong_type.status_code == 415
    not_array = await _send(ingest, event, BATCH)
    assert not_array.status_code == 400
    assert not_array.json()["errors"][0]["code"] == "not_an_array"


async def test_binary_mode_from_the_cloudevents_sdk_is_published_like_structured(
    ingest: Ingest,
) -> None:
    event = CloudEvent(
        attributes={
            "type": "milepost.crm.contact.upserted",
            "source": "hubspot crm",
            "id": "evt-1",
            "time": datetime(2026, 11, 1, 10, 0, tzinfo=UTC),
            "subject": "contacts/Lü Wei",
            "datacontenttype": "application/json",
        },
        data={"account_id": "acme", "contact_id": "u-7", "email": "ceo@acme.io"},
    )
    message = to_binary_event(event)
    response = await ingest.client.post(
        "/v1/crm/events", content=message.body, headers={**ingest.auth, **message.headers}
    )
    assert response.status_code == 200, response.text
    [(key, envelope)] = await ingest.published()
    assert key.endswith(b"/a/acme")
    assert (envelope.event, envelope.user_id) == ("milepost.crm.contact.upserted", "u-7")
    assert envelope.message_id == "hubspot crm#evt-1"
    assert envelope.context["cloudevent"]["subject"] == "contacts/Lü Wei"
    assert envelope.timestamp.isoformat() == "2026-11-01T10:00:00+00:00"
    assert envelope.properties["email"] == "ceo@acme.io"


async def test_binary_mode_needs_its_attributes_and_a_json_body(ingest: Ingest) -> None:
    headers = {**ingest.auth, "ce-specversion": "1.0", "ce-source": "crm", "ce-id": "1"}
    data = orjson.dumps({"account_id": "acme", "ticket_id": "t9"})
    no_type = await ingest.client.post(
        "/v1/crm/events", content=data, headers={**headers, "Content-Type": "application/json"}
    )
    assert no_type.status_code == 400
    assert no_type.json()["errors"][0]["field"] == "type"
    not_json = await ingest.client.post(
        "/v1/crm/events", content=data, headers={**headers, "Content-Type": SINGLE}
    )
    assert not_json.status_code == 415
