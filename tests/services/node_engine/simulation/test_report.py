"""The report built from a replay: the tiny history's numbers, the diff, text and JSON."""

from __future__ import annotations

from services.node_engine.paths.service import compile_source
from services.node_engine.simulation.report import Change, Report, report_json, report_text
from services.node_engine.simulation.service import simulate
from shared.event_log import read_lines
from tests.services.node_engine.simulation.sample_events import SAMPLE
from tests.services.node_engine.simulation.sample_events import lines as sample_lines
from tests.services.node_engine.simulation.tiny import CURRENT, PATH, lines

REFERENCE = SAMPLE.parents[2] / "services" / "node_engine" / "paths" / "reference"


def tiny_report(*, compare: bool = True) -> Report:
    return simulate(
        compile_source("tiny.yaml", PATH, version=2),
        read_lines(line.encode() for line in lines()),
        current=compile_source("tiny.yaml", CURRENT, version=1) if compare else None,
        horizon_seconds=3 * 86400,
    )


def test_the_report_in_json() -> None:
    data = report_json(tiny_report())
    assert data["path"] == {"id": "tiny", "version": 2, "name": "Tiny path"}
    assert data["events"] == {
        "replayed": 7,
        "unattributed": 1,
        "skipped": 1,
        "skipped_examples": [{"where": "line 5", "reason": "not an event envelope: 'timestamp'"}],
        "from": "2026-03-02T09:00:00Z",
        "to": "2026-03-08T09:00:00Z",
    }
    assert data["accounts"] == {"enrolled": 2}
    assert data["snapshots"]["every"] == "P1D"
    assert data["snapshots"]["items"][1] == {
        "at": "2026-03-04T00:00:00Z",
        "places": [
            {"stage": "start", "node": "listing", "accounts": 1},
            {"stage": "start", "node": "orders", "accounts": 1},
        ],
    }
    assert data["triggers"]["by_kind"] == {
        "escalation": 1,
        "node_completed": 2,
        "node_entered": 3,
        "node_overdue": 1,
        "stage_entered": 3,
    }
    assert {"kind": "node_entered", "role": "end_user", "count": 1} in data["triggers"]["by_role"]
    assert [(t["stage"], t["node"], t["kind"]) for t in data["triggers"]["by_node"]] == [
        ("start", None, "stage_entered"),
        ("start", "listing", "escalation"),
        ("start", "listing", "node_completed"),
        ("start", "listing", "node_entered"),
        ("start", "listing", "node_overdue"),
        ("start", "orders", "node_completed"),
        ("start", "orders", "node_entered"),
        ("done", None, "stage_entered"),
    ]
    assert data["time_to_complete"] == [
        {"stage": "start", "node": "listing", "completed": 1, "median_days": 1.0, "p90_days": 1.0},
        {"stage": "start", "node": "orders", "completed": 1, "median_days": 2.0, "p90_days": 2.0},
    ]
    assert data["condition_failures"] == [
        {
            "stage": "start",
            "node": None,
            "reason": "sum of 'amount': 'n/a' is not a number",
            "count": 1,
        }
    ]


def test_the_diff_against_the_current_version() -> None:
    diff = tiny_report().diff
    assert diff is not None
    assert diff.against_version == 1
    assert not diff.same_content
    assert [c for c in diff.places if c.change] == [
        Change("start", "orders", None, 0, 1),
        Change("done", None, None, 1, 0),
    ]
    assert [c for c in diff.triggers if c.change] == [
        Change("start", "orders", "node_completed", 1, 0),
        Change("done", None, "stage_entered", 1, 0),
    ]


def test_the_report_as_tables() -> None:
    text = report_text(tiny_report())
    assert "Simulation of tiny v2 (Tiny path)" in text
    assert "  events replayed: 7 from 2026-03-02T09:00:00Z to 2026-03-08T09:00:00Z" in text
    assert "  start  listing      2      1      1      1      1      1            1" in text
    assert "  start  orders  node_completed          1        0      +1" in text
    assert "  start  listing          1       1    1" in text  # time to complete
    alone = report_text(tiny_report(compare=False))
    assert "No current version of this path in the workspace to compare with." in alone


def test_the_shipped_sample_is_what_the_generator_makes() -> None:
    assert SAMPLE.read_text().splitlines() == sample_lines()


def test_the_sample_through_the_merchant_path() -> None:
    text = (REFERENCE / "platform-merchant.yaml").read_text()
    report = simulate(
        compile_source("platform-merchant.yaml", text, version=1),
        read_lines(SAMPLE.read_bytes().splitlines()),
    )
    assert report.enrolled == 5
    assert report.totals.unattributed == 1
    ends = report.snapshots[-1].positions
    # lotus and ember reach the established zone; harbor waits for its incentive; quiet
    # never lists; pending is never approved
    assert dict(ends) == {
        ("established", None): 2,
        ("nurturing", "order_incentive"): 1,
        ("nurturing", "first_listing"): 1,
        ("settle_in", "application_approved"): 1,
    }
    assert report.triggers[("node_overdue", "settle_in", "application_approved")] == 1
    assert report.triggers[("escalation", "nurturing", "first_listing")] == 1
    assert [(f[1], f[3]) for f in report.failures] == [(None, 1)]
