"""The serialised envelope ingest builds without a second validation is exactly what the
``EventEnvelope`` model makes of it: consumers read the same bytes either way."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.ingest.tracking.service import CallDefaults, normalise_call
from shared.contracts import EventEnvelope
from shared.contracts.events import event_id_for
from tests.services.ingest.conftest import RECEIVED_AT

DEFAULTS = CallDefaults(
    received_at=RECEIVED_AT,
    context={"groupId": "acme", "library": {"name": "analytics-python"}},
    integrations={"All": True},
    sent_at=RECEIVED_AT - timedelta(seconds=3),
    max_event_bytes=32_768,
)

CALLS: list[dict[str, Any]] = [
    {
        "type": "track",
        "messageId": "m-1",
        "userId": 42,
        "event": "Report Exported",
        "properties": {"rows": 12_000, "ratio": 0.25, "tags": ["a", None, True]},
        "timestamp": "2026-11-02T07:59:58.123456+08:00",
    },
    {"type": "identify", "anonymousId": "anon-1", "traits": {"email": "li@acme.example"}},
    {"type": "group", "userId": "u-1", "groupId": 7, "traits": {"plan": "growth"}},
    {
        "type": "page",
        "messageId": "m-4",
        "userId": "u-1",
        "name": "Billing",
        "context": {"groupId": "other", "ip": "10.0.0.1"},
        "integrations": {"Mixpanel": False},
        "sentAt": "2026-11-02T08:00:01",
        "timestamp": "2026-11-02T08:00:00",
    },
    {"type": "screen", "messageId": "m-5", "userId": "u-1", "properties": {"x": {"y": []}}},
    {"type": "alias", "messageId": "m-6", "userId": "u-new", "previousId": "anon-1"},
]


@pytest.mark.parametrize("call", CALLS, ids=[c["type"] for c in CALLS])
def test_the_prepared_envelope_is_the_models_serialisation(call: dict[str, Any]) -> None:
    prepared = normalise_call(call, workspace_id="ws", call_type=None, defaults=DEFAULTS)

    envelope = EventEnvelope.model_validate_json(prepared.value)
    assert envelope.model_dump_json().encode() == prepared.value
    assert prepared.key == envelope.key.encode()
    assert prepared.message_id == envelope.message_id
    assert envelope.event_id == event_id_for("ws", envelope.message_id)
    assert envelope.type == call["type"]
    assert envelope.context["integrations"] == {
        "All": True,
        **call.get("integrations", {}),
    }
