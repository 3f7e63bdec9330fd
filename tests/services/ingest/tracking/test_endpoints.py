"""The Segment HTTP Tracking API over HTTP, on SQLite and PostgreSQL, with the in-memory bus."""

from __future__ import annotations

import gzip
from datetime import timedelta

import httpx
import orjson
import pytest

from services.ingest.settings import IngestSettings
from shared.bus.memory import InMemoryBus
from shared.contracts import EventType
from shared.tenancy.service import revoke_key
from tests.services.ingest.conftest import RECEIVED_AT, Ingest, UnavailableBus, open_ingest


def _problems(response: httpx.Response) -> list[dict[str, object]]:
    errors: list[dict[str, object]] = response.json()["errors"]
    return errors


async def test_track_with_group_context_is_published_keyed_by_account(ingest: Ingest) -> None:
    response = await ingest.post(
        "/v1/track",
        {
            "userId": "u1",
            "event": "Listing Published",
            "properties": {"listing": "l-9", "price": 12.5},
            "context": {"groupId": "acme", "ip": "10.0.0.1"},
            "messageId": "m-1",
        },
    )
    assert response.status_code == 200
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0, "rejected": []}
    [(key, event)] = await ingest.published()
    assert key == f"{ingest.key.workspace_id}/a/acme".encode()
    assert event.type is EventType.TRACK
    assert event.event == "Listing Published"
    assert event.account_id == "acme"
    assert event.user_id == "u1"
    assert event.properties == {"listing": "l-9", "price": 12.5}
    assert event.context["ip"] == "10.0.0.1"
    assert event.received_at == RECEIVED_AT
    assert event.timestamp == RECEIVED_AT
    assert event.source == "segment"


async def test_every_call_type_maps_to_its_envelope(ingest: Ingest) -> None:
    calls = {
        "/v1/identify": {"userId": "u1", "traits": {"role": "admin", "email": "a@acme.io"}},
        "/v1/group": {"userId": "u1", "groupId": "acme", "traits": {"plan": "pro"}},
        "/v1/page": {"anonymousId": "anon-1", "name": "Pricing", "properties": {"path": "/p"}},
        "/v1/screen": {"userId": "u1", "name": "Dashboard"},
        "/v1/alias": {"userId": "u1", "previousId": "anon-1"},
    }
    for path, body in calls.items():
        response = await ingest.post(path, body)
        assert response.status_code == 200, response.text
    events = {event.type: (key, event) for key, event in await ingest.published()}
    assert events[EventType.IDENTIFY][1].traits == {"role": "admin", "email": "a@acme.io"}
    group_key, group = events[EventType.GROUP]
    assert group.account_id == "acme"
    assert group_key.endswith(b"/a/acme")
    assert group.traits == {"plan": "pro"}
    assert events[EventType.PAGE][1].event == "Pricing"
    assert events[EventType.PAGE][0].endswith(b"/x/anon-1")
    assert events[EventType.SCREEN][0].endswith(b"/u/u1")
    assert events[EventType.ALIAS][1].previous_id == "anon-1"


async def test_write_key_in_the_body_authenticates(ingest: Ingest) -> None:
    response = await ingest.client.post(
        "/v1/track", json={"writeKey": ingest.key.write_key, "userId": "u1", "event": "E"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing"),
        ({b"Authorization": b"Basic bXBrX25vcGU6"}, "invalid"),
        ({b"Authorization": b"Basic !!!"}, "missing"),
        ({b"Authorization": b"Basic \xe9bXBr"}, "missing"),
    ],
)
async def test_missing_unknown_or_malformed_write_key_is_401(
    ingest: Ingest, headers: dict[bytes, bytes], code: str
) -> None:
    response = await ingest.client.post("/v1/track", json={"userId": "u"}, headers=headers)
    assert response.status_code == 401
    assert _problems(response)[0] == {
        "field": "Authorization",
        "code": code,
        "message": _problems(response)[0]["message"],
        "limit": None,
    }


async def test_revoked_key_is_refused(ingest: Ingest) -> None:
    async with ingest.resources.sessions() as session:
        await revoke_key(session, ingest.key.key_id, clock=ingest.resources.clock)
        await session.commit()
    response = await ingest.post("/v1/track", {"userId": "u1", "event": "E"})
    assert response.status_code == 401
    assert _problems(response)[0]["code"] == "invalid"


async def test_batch_merges_context_and_reports_each_rejected_item(ingest: Ingest) -> None:
    response = await ingest.post(
        "/v1/batch",
        {
            "batch": [
                {"type": "track", "userId": "u1", "event": "A", "context": {"locale": "zh-CN"}},
                {"type": "track", "userId": "u1"},
                {"userId": "u1", "event": "no type"},
                {"type": "identify", "traits": {}},
                {"type": "shout", "userId": "u1"},
                {"type": "group", "userId": "u1", "groupId": "globex"},
            ],
            "context": {"groupId": "acme", "library": {"name": "analytics-python"}},
            "integrations": {"All": True},
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    rejected = {item["index"]: item["errors"][0] for item in body["rejected"]}
    assert rejected[1]["field"] == "batch[1].event"
    assert rejected[2] == {
        "field": "batch[2].type",
        "code": "missing",
        "message": "every call needs a type",
        "limit": None,
    }
    assert rejected[3]["field"] == "batch[3].userId"
    assert rejected[4]["field"] == "batch[4].type"
    published = [event for _, event in await ingest.published()]
    track = next(e for e in published if e.type is EventType.TRACK)
    assert track.account_id == "acme"
    assert track.context["locale"] == "zh-CN"
    assert track.context["library"] == {"name": "analytics-python"}
    assert track.context["integrations"] == {"All": True}
    group = next(e for e in published if e.type is EventType.GROUP)
    assert group.account_id == "globex"


async def test_a_batch_with_only_invalid_items_is_400(ingest: Ingest) -> None:
    response = await ingest.post("/v1/batch", {"batch": [{"type": "track"}]})
    assert response.status_code == 400
    fields = {p["field"] for p in _problems(response)}
    assert "batch[0].event" in fields


async def test_clock_skew_is_corrected_from_sent_at(ingest: Ingest) -> None:
    # The device clock runs 1 hour fast: it stamped the event 5 minutes before sending.
    response = await ingest.post(
        "/v1/batch",
        {
            "batch": [
                {"type": "track", "userId": "u", "event": "E", "timestamp": "2026-11-02T09:55:00Z"}
            ],
            "sentAt": "2026-11-02T10:00:00Z",
        },
    )
    assert response.status_code == 200
    [(_, event)] = await ingest.published()
    assert event.timestamp == RECEIVED_AT - timedelta(minutes=5)
    assert event.original_timestamp is not None
    assert event.original_timestamp.hour == 9


async def test_a_bad_timestamp_names_the_field(ingest: Ingest) -> None:
    response = await ingest.post(
        "/v1/track", {"userId": "u", "event": "E", "timestamp": "yesterday-ish"}
    )
    assert response.status_code == 400
    assert _problems(response)[0]["field"] == "timestamp"
    body = response.json()
    # Segment's SDKs read `code` and `message` at the top level of an error answer.
    assert body["code"] == _problems(response)[0]["code"]
    assert body["message"].startswith("timestamp: ")


async def test_message_id_is_deduplicated_across_requests_and_within_a_batch(
    ingest: Ingest,
) -> None:
    call = {"type": "track", "userId": "u1", "event": "E", "messageId": "dup-1"}
    first = await ingest.post("/v1/batch", {"batch": [call, call]})
    second = await ingest.post("/v1/track", call)
    assert first.json()["accepted"] == 1
    assert first.json()["duplicates"] == 1
    assert second.json() == {"success": True, "accepted": 0, "duplicates": 1, "rejected": []}
    assert len(await ingest.published()) == 1


async def test_events_without_an_account_are_keyed_by_user(ingest: Ingest) -> None:
    await ingest.post("/v1/track", {"userId": "u-42", "event": "Login"})
    [(key, event)] = await ingest.published()
    assert key == f"{ingest.key.workspace_id}/u/u-42".encode()
    assert event.account_id is None


async def test_an_oversize_event_is_rejected_with_the_limit(ingest: Ingest) -> None:
    big = {"type": "track", "userId": "u", "event": "E", "properties": {"blob": "x" * 33_000}}
    small = {"type": "track", "userId": "u", "event": "E"}
    response = await ingest.post("/v1/batch", {"batch": [big, small]})
    assert response.status_code == 200
    [item] = response.json()["rejected"]
    assert item["errors"][0]["code"] == "too_large"
    assert item["errors"][0]["limit"] == 32 * 1024
    assert response.json()["accepted"] == 1


async def test_too_many_events_in_a_batch_is_400_with_the_limit(ingest: Ingest) -> None:
    calls = [{"type": "track", "userId": "u", "event": "E"}] * 2501
    response = await ingest.client.post(
        "/v1/batch",
        content=orjson.dumps({"batch": calls}),
        headers={**ingest.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert _problems(response)[0]["field"] == "batch"
    assert _problems(response)[0]["limit"] == 2500


async def test_batch_limits_can_be_raised_for_rudderstack_clients(database_url: str) -> None:
    settings = IngestSettings(max_batch_events=4000, max_batch_bytes=4_000_000)
    async for harness in open_ingest(database_url, InMemoryBus(), settings):
        calls = [
            {"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}"}
            for i in range(3000)
        ]
        response = await harness.post("/v1/batch", {"batch": calls})
        assert response.status_code == 200
        assert response.json()["accepted"] == 3000


async def test_an_oversize_body_is_413(ingest: Ingest) -> None:
    response = await ingest.client.post(
        "/v1/batch",
        content=b'{"batch": [' + b" " * 600_000 + b"]}",
        headers={**ingest.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert _problems(response)[0]["limit"] == 500 * 1024


async def test_gzip_bodies_are_accepted(ingest: Ingest) -> None:
    body = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "Z"}]}))
    response = await ingest.client.post(
        "/v1/batch",
        content=body,
        headers={**ingest.auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1


async def test_a_gzip_bomb_is_refused_before_it_inflates(ingest: Ingest) -> None:
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")
    assert len(bomb) < 500 * 1024
    response = await ingest.client.post(
        "/v1/batch",
        content=bomb,
        headers={**ingest.auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    assert _problems(response)[0]["code"] == "decompressed_too_large"


FORM = "application/x-www-form-urlencoded"
"""What RudderStack's Node SDK sends its gzipped JSON as."""


async def test_gzipped_json_sent_as_form_urlencoded_is_read_as_json(ingest: Ingest) -> None:
    body = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "Z"}]}))
    response = await ingest.client.post(
        "/v1/batch",
        content=body,
        headers={**ingest.auth, "Content-Type": FORM, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    not_json = await ingest.client.post(
        "/v1/batch", content=b"userId=u&event=Z", headers={**ingest.auth, "Content-Type": FORM}
    )
    assert not_json.status_code == 400
    assert _problems(not_json)[0]["code"] == "invalid_json"


async def test_a_form_urlencoded_gzip_bomb_is_413_naming_the_limit(ingest: Ingest) -> None:
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")
    response = await ingest.client.post(
        "/v1/batch",
        content=bomb,
        headers={**ingest.auth, "Content-Type": FORM, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413
    [problem] = _problems(response)
    assert (problem["code"], problem["limit"]) == ("decompressed_too_large", 500 * 1024)
    assert "512000 bytes" in str(problem["message"])


async def test_identify_traits_are_read_from_context_traits_too(ingest: Ingest) -> None:
    rudderstack = {"userId": "u1", "context": {"traits": {"email": "a@acme.io", "plan": "a"}}}
    both = {**rudderstack, "userId": "u2", "traits": {"plan": "b"}}
    for body in (rudderstack, both):
        assert (await ingest.post("/v1/identify", body)).status_code == 200
    [(_, only_nested), (_, top_wins)] = await ingest.published()
    assert only_nested.traits == {"email": "a@acme.io", "plan": "a"}
    assert top_wins.traits == {"email": "a@acme.io", "plan": "b"}


@pytest.mark.parametrize(
    ("content", "headers", "status", "field", "code"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "body", "invalid_json"),
        (
            b'{"userId": "\xff"}',
            {"Content-Type": "application/json"},
            400,
            "body",
            "invalid_encoding",
        ),
        (b"{}", {"Content-Type": "application/xml"}, 415, "Content-Type", "unsupported_media_type"),
        (b"{}", {}, 415, "Content-Type", "unsupported_media_type"),
        (
            b"{}",
            {"Content-Type": "application/json", "Content-Encoding": "br"},
            415,
            "Content-Encoding",
            "unsupported_encoding",
        ),
        (
            b"not gzip",
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            400,
            "body",
            "invalid_gzip",
        ),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "body", "not_an_object"),
    ],
)
async def test_malformed_requests_get_a_clear_4xx(
    ingest: Ingest, content: bytes, headers: dict[str, str], status: int, field: str, code: str
) -> None:
    response = await ingest.client.post(
        "/v1/batch", content=content, headers={**ingest.auth, **headers}
    )
    assert response.status_code == status, response.text
    assert _problems(response)[0]["field"] == field
    assert _problems(response)[0]["code"] == code


async def test_deeply_nested_properties_are_400_with_the_limit(ingest: Ingest) -> None:
    nested: dict[str, object] = {}
    cursor = nested
    for _ in range(40):
        cursor["a"] = {}
        cursor = cursor["a"]  # type: ignore[assignment]
    response = await ingest.post("/v1/track", {"userId": "u", "event": "E", "properties": nested})
    assert response.status_code == 400
    assert _problems(response)[0]["code"] == "too_deep"
    assert _problems(response)[0]["limit"] == 32


@pytest.mark.parametrize("depth", [1_025, 100_000])
async def test_json_past_the_parsers_own_depth_is_too_deep_not_invalid(
    ingest: Ingest, depth: int
) -> None:
    response = await ingest.client.post(
        "/v1/track",
        content=b"[" * depth + b"]" * depth,
        headers={**ingest.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert (_problems(response)[0]["code"], _problems(response)[0]["limit"]) == ("too_deep", 32)


async def test_an_unacknowledged_publish_is_503_with_retry_after(database_url: str) -> None:
    async for harness in open_ingest(database_url, UnavailableBus()):
        response = await harness.post("/v1/track", {"userId": "u", "event": "E", "messageId": "x"})
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert _problems(response)[0]["field"] == "bus"
        ready = await harness.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"bus": False, "database": True}


async def test_health_readiness_metrics_and_openapi(ingest: Ingest) -> None:
    assert (await ingest.client.get("/healthz")).json() == {"status": "ok"}
    ready = await ingest.client.get("/readyz")
    assert ready.json() == {"status": "ready", "checks": {"bus": True, "database": True}}
    await ingest.post("/v1/track", {"userId": "u", "event": "E"})
    metrics = (await ingest.client.get("/metrics")).text
    assert 'milepost_ingest_events_total{outcome="published"} 1.0' in metrics
    assert 'route="/v1/track"' in metrics
    spec = (await ingest.client.get("/openapi.json")).json()
    assert "/v1/batch" in spec["paths"]
    assert "TrackCall" in spec["components"]["schemas"]
    assert (await ingest.client.get("/docs")).status_code == 200


async def test_a_skew_correction_past_the_calendar_is_400_not_a_crash(ingest: Ingest) -> None:
    response = await ingest.post(
        "/v1/group",
        {
            "userId": "u",
            "groupId": "g",
            "timestamp": "0124-03-27T02:36:47Z",
            "sentAt": "2511-05-13T14:47:58Z",
        },
    )
    assert response.status_code == 400
    assert _problems(response)[0] == {
        "field": "timestamp",
        "code": "out_of_range",
        "message": "timestamp corrected by sentAt leaves the calendar",
        "limit": None,
    }
