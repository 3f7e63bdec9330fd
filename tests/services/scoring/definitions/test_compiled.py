"""Compiled metric definitions: frozen values, filters, digest, and the reference file."""

from __future__ import annotations

from pathlib import Path

import pytest

import services.scoring
from services.scoring.definitions import (
    MetricDefinition,
    MetricEvent,
    MetricKind,
    Window,
    load_metrics,
)
from services.scoring.errors import MetricUnknown
from shared.definitions import DefinitionError

REFERENCE = Path(services.scoring.__file__).parent / "reference" / "metrics.yaml"

TEXT = """\
metrics:
  - id: orders
    name: Orders
    kind: count
    event: Order Completed
    where: {channel: [web, app], paid: true}
    windows: [P7D, P28D]
    north_star: true
  - id: admins
    name: Admins
    kind: distinct_users
    event: Logged In
    role: admin
    windows: [P28D]
  - id: seats
    name: Seats
    kind: fact
    fact: crm.seats
  - id: utilisation
    name: Utilisation
    kind: ratio
    numerator: admins
    denominator: seats
    windows: [P28D]
"""


def test_a_file_compiles_to_frozen_definitions() -> None:
    definitions = load_metrics("metrics.yaml", text=TEXT)
    assert definitions.north_star == "orders"
    assert definitions.get("orders") == MetricDefinition(
        id="orders",
        name="Orders",
        kind=MetricKind.COUNT,
        event="Order Completed",
        where=(("channel", ("web", "app")), ("paid", (True,))),
        windows=(Window.P7D, Window.P28D),
        north_star=True,
    )
    assert definitions.get("admins").role == "admin"
    assert definitions.get("utilisation").numerator == "admins"
    assert [m.id for m in definitions.for_event("Logged In")] == ["admins"]
    assert [m.id for m in definitions.for_fact("crm.seats")] == ["seats"]
    assert definitions.for_event("Nothing") == ()
    with pytest.raises(MetricUnknown, match="'visits'"):
        definitions.get("visits")


def test_where_accepts_any_listed_value_and_keeps_booleans_apart_from_numbers() -> None:
    orders = load_metrics("metrics.yaml", text=TEXT).get("orders")

    def event(**properties: object) -> MetricEvent:
        return MetricEvent("Order Completed", 0, properties=properties)

    assert orders.matches(event(channel="app", paid=True))
    assert not orders.matches(event(channel="shop", paid=True))
    assert not orders.matches(event(channel="web", paid=1))
    assert not orders.matches(event(channel="web"))
    assert not orders.matches(MetricEvent("Order Refunded", 0, properties={"channel": "web"}))


def test_a_role_filter_reads_the_actors_roles() -> None:
    admins = load_metrics("metrics.yaml", text=TEXT).get("admins")
    assert admins.matches(MetricEvent("Logged In", 0, "u1", frozenset({"admin", "end_user"})))
    assert not admins.matches(MetricEvent("Logged In", 0, "u1", frozenset({"end_user"})))


def test_the_digest_follows_content_not_layout() -> None:
    digest = load_metrics("metrics.yaml", text=TEXT).digest
    relaid = "# comment\n" + TEXT.replace(
        "{channel: [web, app], paid: true}", "{paid: true, channel: [web, app]}"
    )
    assert load_metrics("metrics.yaml", text=relaid).digest == digest
    assert (
        load_metrics("metrics.yaml", text=TEXT.replace("P7D, P28D", "P1D, P28D")).digest != digest
    )


def test_a_file_on_disk_is_named_in_its_problems(tmp_path: Path) -> None:
    path = tmp_path / "metrics.yaml"
    path.write_text(TEXT.replace("denominator: seats", "denominator: paid_seats"))
    with pytest.raises(DefinitionError) as caught:
        load_metrics(path)
    assert (
        str(caught.value)
        == f"{path}:23:18: metrics[3].denominator: metric 'paid_seats' does not exist"
    )


def test_the_reference_file_loads() -> None:
    definitions = load_metrics(REFERENCE)
    ids = {m.id for m in definitions.metrics}
    assert definitions.north_star == "orders"
    assert Window.P28D in definitions.get("orders").windows
    assert {
        "logins",
        "key_feature_use",
        "report_exports",
        "data_exports",
        "api_calls",
        "tickets_opened",
        "feature_requests",
        "seat_utilisation",
        "active_seats",
        "export_rows",
        "core_actions_per_active_user",
        "paid_seats",
        "gmv",
        "decision_maker_last_seen",
        "admin_last_seen",
    } <= ids
    assert definitions.get("decision_maker_last_seen").role == "decision_maker"
    assert definitions.get("seat_utilisation").denominator == "paid_seats"
    features = {m.id for m in definitions.metrics if m.feature}
    assert features == {"listings_published", "key_feature_use", "report_exports", "api_calls"}
    contacts = {m.id for m in definitions.metrics if m.contact}
    assert contacts == {"ticket_last_seen", "feature_request_last_seen"}
