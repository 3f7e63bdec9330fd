from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from services.embedded import mount_services
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.contracts import EventEnvelope, EventType, TriggerEnvelope, TriggerKind
from shared.contracts.events import event_id_for, event_key
from shared.contracts.export import asyncapi_document, write_contracts
from shared.contracts.topics import TOPICS, Topic
from shared.db import create_engine, create_session_factory
from shared.observability.http import create_http_app
from shared.runtime import Resources
from shared.settings import RuntimeSettings

NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
DOCS = Path(__file__).parents[3] / "docs" / "contracts"
ROUTE = re.compile(r"(?<![\w.])/(?:api|v1)/[A-Za-z0-9_{}/.-]*[A-Za-z0-9_}]")
"""An HTTP route of Milepost's APIs, as the AsyncAPI document's prose names one."""


def _event(**changes: object) -> EventEnvelope:
    fields: dict[str, object] = {
        "event_id": event_id_for("ws1", "m1"),
        "workspace_id": "ws1",
        "message_id": "m1",
        "type": EventType.TRACK,
        "event": "Order Placed",
        "account_id": "acme",
        "user_id": "u1",
        "timestamp": NOW,
        "received_at": NOW,
        "source": "segment",
    }
    fields.update(changes)
    return EventEnvelope.model_validate(fields)


def test_event_key_is_the_account_when_known_else_the_person() -> None:
    assert _event().key == "ws1/a/acme"
    assert _event(account_id=None).key == "ws1/u/u1"
    assert event_key("ws1", None, None, "anon-7") == "ws1/x/anon-7"


def test_event_id_is_deterministic_per_workspace_and_message() -> None:
    assert event_id_for("ws1", "m1") == event_id_for("ws1", "m1")
    assert event_id_for("ws1", "m1") != event_id_for("ws2", "m1")
    assert len(event_id_for("ws1", "m1")) == 32


def test_envelope_round_trips_through_json() -> None:
    event = _event(properties={"amount": 12.5, "items": [1, 2]})
    assert EventEnvelope.model_validate_json(event.model_dump_json()) == event


def test_envelope_refuses_naive_timestamps_and_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        _event(timestamp=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="extra"):
        _event(unexpected=1)


def test_trigger_key_matches_the_accounts_events() -> None:
    trigger = TriggerEnvelope(
        trigger_id="t1",
        workspace_id="ws1",
        account_id="acme",
        path_id="saas-account",
        path_version=1,
        stage="onboarding",
        node="admin_invited_users",
        kind=TriggerKind.NODE_OVERDUE,
        reason="no user invited 3 days after onboarding began",
        occurred_at=NOW,
    )
    assert trigger.key == _event().key


def test_asyncapi_describes_every_topic_with_its_key_rule() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {str(spec.topic) for spec in TOPICS}
    events = document["channels"]["events"]
    assert events["address"] == Topic.EVENTS.value
    key = document["components"]["messages"]["EventEnvelope"]["bindings"]["kafka"]["key"]
    assert "{account_id}" in key["description"]
    assert "EventEnvelope" in document["components"]["schemas"]


def test_committed_contract_docs_are_current(tmp_path: Path) -> None:
    """docs/contracts must be regenerated (make contracts) whenever a contract changes."""
    for fresh in write_contracts(tmp_path):
        committed = DOCS / fresh.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is missing: run make contracts"
        assert committed.read_text() == fresh.read_text(), f"{committed} is stale: make contracts"
    assert yaml.safe_load((DOCS / "asyncapi.yaml").read_text())["asyncapi"] == "3.0.0"


def _texts(node: object) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _texts(item)


def _served_routes(tmp_path: Path) -> set[str]:
    """The paths in the OpenAPI document of every service mounted as ``milepost run`` does."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'milepost.db'}")
    resources = Resources(
        InMemoryBus(), engine, create_session_factory(engine), FrozenClock(NOW), CollectorRegistry()
    )
    app = create_http_app("Milepost", "every service", resources)
    mount_services(app, RuntimeSettings(data_dir=tmp_path), resources)  # workers not started
    return set(app.openapi()["paths"])


def test_every_http_route_the_asyncapi_document_names_is_served(tmp_path: Path) -> None:
    document = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    named = {route for text in _texts(document) for route in ROUTE.findall(text)}
    assert "/api/messaging/workspaces/{workspace}/subscriptions" in named
    assert named <= _served_routes(tmp_path)
