"""One evaluation: health with its explanation, signals, the North Star, and the score events
due with their deterministic ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from unittest.mock import ANY

import msgspec

from services.scoring.catalog.service import REFERENCE_METRICS, reference_definitions
from services.scoring.definitions import MetricEvent, load_metrics
from services.scoring.evaluation.evaluate import (
    Findings,
    ScoringConfig,
    evaluate,
    risk_from_json,
    risk_to_json,
    score_event_id,
)
from services.scoring.evaluation.facts import AccountFacts
from services.scoring.health import health_explanation
from services.scoring.metrics import DAY, MetricStore, fold
from shared.contracts.scores import ScoreKind

NOW = datetime.fromtimestamp(1_000 * DAY + 9 * 3600, UTC)
DEFINITIONS = reference_definitions().definitions
FACTS = AccountFacts(
    {"crm.invoice_status": "overdue"}, frozenset({"decision_maker"}), open_tickets=()
)


def store() -> MetricStore:
    found = MetricStore()
    now = int(NOW.timestamp())
    for day in range(30):
        for _ in range(3):
            event = MetricEvent("Logged In", now - day * DAY, "boss", frozenset({"decision_maker"}))
            found = fold(found, event, DEFINITIONS, now=now)
    order = MetricEvent("Order Completed", now, "boss", properties={"amount": 10})
    return fold(found, order, DEFINITIONS, now=now)


def test_the_first_evaluation_scores_and_raises_with_explanations() -> None:
    evaluation = evaluate(
        workspace_id="ws",
        account_id="acme",
        store=store(),
        facts=FACTS,
        definitions=DEFINITIONS,
        previous=Findings(),
        now=NOW,
        cause="e1",
        config=ScoringConfig(),
    )
    changed, raised = evaluation.events
    assert changed.kind is ScoreKind.SCORE_CHANGED
    assert changed.health == evaluation.findings.health
    assert changed.explanation["previous"] is None
    assert changed.explanation["text"][0].startswith("Health ")
    assert changed.explanation["north_star"] == {
        "metric": "orders",
        "name": "Orders completed",
        "window": "P28D",
        "value": 1.0,
    }
    assert raised.kind is ScoreKind.RISK_RAISED
    assert raised.signals == ["invoice_overdue"]
    assert raised.risk_level is not None
    assert raised.risk_level.value == "high"
    assert raised.explanation["signals"]["invoice_overdue"]["sentence"] == "An invoice is overdue."
    assert raised.score_event_id == score_event_id("ws", "acme", ScoreKind.RISK_RAISED, "e1")
    kept = json.loads(evaluation.account_explanation())
    assert kept["north_star"] == changed.explanation["north_star"]
    assert evaluation.health is not None
    rendered = {**health_explanation(kept["health"]), "previous": None, "north_star": ANY}
    assert rendered == changed.explanation


def test_the_row_keeps_the_health_score_and_renders_it_as_its_event_explains_it() -> None:
    evaluation = evaluate(
        workspace_id="ws",
        account_id="acme",
        store=store(),
        facts=AccountFacts({"crm.seats": 40}, frozenset({"admin"})),
        definitions=DEFINITIONS,
        previous=Findings(),
        now=NOW,
        cause="e1",
        config=ScoringConfig(),
    )
    health = evaluation.health
    assert health is not None
    assert health.missing  # a sentence names what was left out
    assert any(round(c.weight, 4) != c.weight for c in health.components)  # kept unrounded
    kept = json.loads(evaluation.account_explanation())
    assert set(kept) == {"health", "north_star"}
    assert health_explanation(kept["health"]) == health.as_explanation()


def test_a_row_an_earlier_release_wrote_keeps_its_explanation() -> None:
    stored = {"band": "watch", "components": {}, "missing": [], "text": ["Health 50.0 of 100."]}
    assert health_explanation(stored) == stored


def test_nothing_is_due_when_nothing_changed() -> None:
    first = evaluate(
        workspace_id="ws",
        account_id="acme",
        store=store(),
        facts=FACTS,
        definitions=DEFINITIONS,
        previous=Findings(),
        now=NOW,
        cause="e1",
        config=ScoringConfig(),
    )
    again = evaluate(
        workspace_id="ws",
        account_id="acme",
        store=store(),
        facts=FACTS,
        definitions=DEFINITIONS,
        previous=first.findings,
        now=NOW,
        cause="e2",
        config=ScoringConfig(),
    )
    assert again.events == ()
    assert again.findings == first.findings


def test_ids_depend_on_the_finding_and_its_cause_only() -> None:
    one = score_event_id("ws", "acme", ScoreKind.RISK_RAISED, "e1")
    assert one == score_event_id("ws", "acme", ScoreKind.RISK_RAISED, "e1")
    assert one != score_event_id("ws", "acme", ScoreKind.RISK_CLEARED, "e1")
    assert one != score_event_id("ws", "acme", ScoreKind.RISK_RAISED, "e2")
    assert len(one) == 32


def test_a_risk_state_survives_storage_with_a_never_active_role() -> None:
    evaluation = evaluate(
        workspace_id="ws",
        account_id="acme",
        store=MetricStore(),
        facts=AccountFacts({"crm.invoice_status": "overdue"}, frozenset({"admin"})),
        definitions=DEFINITIONS,
        previous=Findings(),
        now=NOW,
        cause="e1",
        config=ScoringConfig(),
    )
    state = evaluation.findings.risk
    assert state is not None
    assert {s.kind.value for s in state.signals} == {"admin_inactive", "invoice_overdue"}
    assert risk_from_json(risk_to_json(state)) == state
    json.loads(evaluation.account_explanation(), parse_constant=_refuse)  # PostgreSQL's JSON


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


def test_the_metrics_files_health_weights_apply_per_segment() -> None:
    text = REFERENCE_METRICS.read_text() + (
        "health:\n"
        "  weights: {relationship: 1}\n"
        "  segments:\n"
        "    - {business_type: platform, weights: {billing_state: 1}}\n"
    )
    weighed = load_metrics("metrics.yaml", text=text)
    store = MetricStore()
    facts = AccountFacts({"crm.invoice_status": "overdue"}, frozenset({"admin"}))

    def health(business_type: str) -> object:
        found = evaluate(
            workspace_id="ws",
            account_id="acme",
            store=store,
            facts=msgspec.structs.replace(
                facts, values={**facts.values, "account.business_type": business_type}
            ),
            definitions=weighed,
            previous=Findings(),
            now=NOW,
            cause="e1",
            config=ScoringConfig(),
        ).health
        assert found is not None
        return [(c.component.value, c.weight) for c in found.components]

    assert health("platform") == [("billing_state", 1.0)]
    assert health("service") == [("relationship", 1.0)]


def test_the_metrics_files_signal_tuning_applies() -> None:
    text = REFERENCE_METRICS.read_text() + (
        "signals:\n"
        "  invoice_overdue: {enabled: false}\n"
        "  admin_inactive: {raise_at: 5, clear_at: 2, severity: high}\n"
    )
    tuned = load_metrics("metrics.yaml", text=text)
    found = evaluate(
        workspace_id="ws",
        account_id="acme",
        store=MetricStore(),
        facts=AccountFacts({"crm.invoice_status": "overdue"}, frozenset({"admin"})),
        definitions=tuned,
        previous=Findings(),
        now=NOW,
        cause="e1",
        config=ScoringConfig(),
    ).assessment
    assert [(s.kind.value, s.severity.value, s.raise_at) for s in found.signals] == [
        ("admin_inactive", "high", 5.0)
    ]
