"""Growth-path files: the problems ``check_path`` finds (each at its location), validation
refusing a file with every problem, and what ``compile_path`` builds for the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from services.node_engine.paths.compiled import Escalation, compile_path
from services.node_engine.paths.expressions import AggregateKind
from services.node_engine.paths.files import GrowthPathFile, Location, check_path
from shared.definitions import DefinitionError, DefinitionInvalid, load_definition
from tests.services.node_engine.support import (
    PATH_MISTAKES,
    REFERENCE,
    build,
    document,
    node,
    stage,
    unchecked,
)


def tiers(*levels: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "metric": 'sum("Order", "amount", within="P28D")',
        "label": "28-day GMV",
        "stages": ["grow"],
        "levels": list(levels),
        **fields,
    }


def problems(doc: dict[str, Any]) -> list[tuple[Location, str]]:
    return [(found.location, found.message) for found in check_path(unchecked(doc))]


def locations(doc: dict[str, Any]) -> list[Location]:
    return [location for location, _message in problems(doc)]


# -- the reference paths ------------------------------------------------------------------


@pytest.mark.parametrize("file", sorted(REFERENCE.glob("*.yaml")), ids=lambda f: f.stem)
def test_the_reference_paths_are_valid(file: Path) -> None:
    validated = GrowthPathFile.model_validate(yaml.safe_load(file.read_text()))
    assert check_path(validated) == []
    compiled = compile_path(validated, version=3)
    assert compiled.id == file.stem
    assert compiled.version == 3
    assert compiled.review_seconds == 86400


def test_the_platform_path_compiles_to_its_stages_nodes_tiers_and_aggregates() -> None:
    path = build((REFERENCE / "platform-merchant.yaml").read_text())
    assert path.business_type == "platform"
    assert [s.id for s in path.stages] == ["settle_in", "account_setup", "nurturing", "established"]
    assert [s.index for s in path.stages] == [0, 1, 2, 3]
    assert [n.id for n in path.stages_by_id["nurturing"].nodes] == [
        "first_listing",
        "first_order",
        "ten_orders",
        "order_incentive",
    ]
    first_listing = path.nodes_by_id["first_listing"]
    assert first_listing.stage == "nurturing"
    assert first_listing.due_seconds == 3 * 86400
    assert first_listing.due_from == "stage"
    assert first_listing.notify == ("admin",)
    assert first_listing.escalations == (
        Escalation(
            1,
            7 * 86400,
            ("account_owner",),
            "task",
            "No listing by day 7: the account manager visits or calls",
        ),
    )
    assert first_listing.reentry == "never"
    ten_orders = path.nodes_by_id["ten_orders"]
    assert [b.goto for b in ten_orders.next] == ["established", "order_incentive"]
    assert ten_orders.next[0].when is not None
    assert ten_orders.next[1].when is None
    assert path.nodes_by_id["order_incentive"].due_from == "node"
    assert path.stages_by_id["established"].nodes == ()

    assert path.tiers is not None
    assert path.tiers.stages == frozenset({"established"})
    assert path.tiers.notify == ("decision_maker", "account_owner")
    assert [(t.id, t.name, t.enter_at, t.exit_below) for t in path.tiers.levels] == [
        ("L1", "Starter", 0, 0),
        ("L2", "Growing", 10000, 8000),
        ("L3", "Established", 50000, 40000),
        ("L4", "Key merchant", 200000, 160000),
        ("L5", "Flagship", 1000000, 800000),
    ]
    assert [b.id for b in path.tiers.levels[2].benefits] == ["ads_credit", "priority_support"]
    assert [a.key for a in path.aggregates] == [
        "sum|Order Completed|amount|||2419200",
        "count|Merchant Approved||||",
        "count|Profile Completed||||",
        "count|Payout Account Connected||||",
        "count|Listing Published||||",
        "count|Order Completed||||",
        "count|Order Completed||||604800",
    ]


def test_the_saas_path_compiles_roles_windows_and_reentry() -> None:
    path = build((REFERENCE / "saas-account.yaml").read_text())
    assert path.business_type == "service"
    assert path.tiers is None
    keys = {a.key: a for a in path.aggregates}
    assert set(keys) == {
        "count|milepost.crm.invoice.paid||||",
        "count|User Invited|||admin|",
        "distinct_users|Report Created|||end_user|1209600",
        "distinct_users|*||||604800",
    }
    assert keys["distinct_users|*||||604800"].kind is AggregateKind.DISTINCT_USERS
    assert keys["distinct_users|*||||604800"].event is None
    renewed = path.nodes_by_id["renewed"]
    assert renewed.reentry == "always"
    assert (renewed.due_seconds, renewed.due_from) == (7 * 86400, "node")
    assert renewed.escalations[0].level == 1
    assert renewed.escalations[0].at_seconds == 14 * 86400
    assert [b.goto for b in renewed.next] == ["renewal_window_90"]
    assert [b.goto for b in path.nodes_by_id["demo_held"].next] == ["lead"]
    assert [b.goto for b in path.nodes_by_id["contract_signed"].next] == ["lead"]


def test_an_event_is_offered_only_the_aggregates_that_may_count_it_in_path_order() -> None:
    path = build((REFERENCE / "saas-account.yaml").read_text())
    any_event = "distinct_users|*||||604800"

    def keys(name: str | None) -> list[str]:
        return [a.key for a in path.aggregates_for(name)]

    assert keys("Report Created") == [
        a.key for a in path.aggregates if a.event in (None, "Report Created")
    ]
    assert set(keys("Report Created")) == {
        "distinct_users|Report Created|||end_user|1209600",
        any_event,
    }
    assert keys("Page Viewed") == [any_event]
    assert keys(None) == [any_event]


def test_stage_after_and_node_after() -> None:
    path = build(document([stage("a", node("one"), node("two")), stage("b", node("three"))]))
    a, b = path.stages
    assert path.stage_after(a) is b
    assert path.stage_after(b) is None
    assert path.node_after(path.nodes_by_id["one"]) is path.nodes_by_id["two"]
    assert path.node_after(path.nodes_by_id["two"]) is None
    assert path.node_after(path.nodes_by_id["three"]) is None


def test_compiled_defaults_and_durations() -> None:
    path = build(
        document(
            [
                stage(
                    "grow",
                    node(
                        "n",
                        due="PT12H",
                        reentry="P1W",
                        escalations=[
                            {"at": "P1D", "notify": ["admin"]},
                            {"at": "P2D", "notify": ["account_owner"], "action": "task"},
                        ],
                    ),
                )
            ],
            tiers=tiers({"id": "L1", "enter_at": 0}, {"id": "L2", "enter_at": 5}),
            review_every="PT6H",
        )
    )
    n = path.nodes_by_id["n"]
    assert n.due_seconds == 12 * 3600
    assert n.reentry == 7 * 86400
    assert [(e.level, e.at_seconds, e.action, e.reason) for e in n.escalations] == [
        (1, 86400, "nudge", None),
        (2, 2 * 86400, "task", None),
    ]
    assert path.review_seconds == 6 * 3600
    assert path.tiers is not None
    assert [(t.name, t.exit_below) for t in path.tiers.levels] == [("L1", 0), ("L2", 5)]


# -- check_path: each problem at its location ----------------------------------------------


def test_a_goto_must_name_a_stage_or_node() -> None:
    doc = document(
        [
            stage(
                "a", node("one", next=[{"when": "tier == 'L1'", "goto": "b"}, {"goto": "three"}])
            ),
            stage("b", node("two", next=[{"when": "tier == 'L1'", "goto": "nowhere"}])),
        ]
    )
    doc["stages"][0]["next"] = [{"when": "stage == 'a'", "goto": "a"}, {"goto": "elsewhere"}]
    assert problems(doc) == [
        (("stages", 0, "next", 1, "goto"), "no stage or node 'elsewhere'"),
        (("stages", 0, "nodes", 0, "next", 1, "goto"), "no stage or node 'three'"),
        (("stages", 1, "nodes", 0, "next", 0, "goto"), "no stage or node 'nowhere'"),
    ]


def test_only_the_last_branch_may_omit_when() -> None:
    doc = document([stage("a", node("one", next=[{"goto": "a"}, {"goto": "one"}]))])
    assert problems(doc) == [
        (("stages", 0, "nodes", 0, "next", 0, "when"), "only the last branch may omit `when`")
    ]


def test_ids_are_unique_across_stages_and_nodes() -> None:
    doc = document(
        [
            stage("a", node("one"), node("a")),
            stage("b", node("one")),
            stage("b", node("two")),
        ]
    )
    message = "is already used (ids name stages and nodes)"
    assert problems(doc) == [
        (("stages", 0, "nodes", 1, "id"), f"id 'a' {message}"),
        (("stages", 1, "nodes", 0, "id"), f"id 'one' {message}"),
        (("stages", 2, "id"), f"id 'b' {message}"),
    ]


@pytest.mark.parametrize(
    ("due", "escalations", "bad"),
    [
        ("P3D", ["P7D", "P14D"], []),
        (None, ["PT1H", "P1D"], []),
        ("P3D", ["P3D"], [0]),
        ("P3D", ["P2D"], [0]),
        ("P3D", ["P7D", "P5D"], [1]),
        ("P3D", ["P7D", "P7D", "P8D"], [1]),
        ("P1W", ["P6D", "P1D"], [0, 1]),
    ],
)
def test_escalations_come_after_the_due_date_and_each_after_the_one_before(
    due: str | None, escalations: list[str], bad: list[int]
) -> None:
    fields: dict[str, Any] = {
        "escalations": [{"at": at, "notify": ["admin"]} for at in escalations]
    }
    if due:
        fields["due"] = due
    doc = document([stage("a", node("x"), node("one", **fields))])
    assert problems(doc) == [
        (
            ("stages", 0, "nodes", 1, "escalations", e, "at"),
            "escalations must come after the due date and each after the one before",
        )
        for e in bad
    ]


def test_tier_levels_rise_with_exit_at_or_below_entry_in_known_stages() -> None:
    doc = document(
        [stage("grow", node("one"))],
        tiers=tiers(
            {"id": "L1", "enter_at": 0},
            {"id": "L2", "enter_at": 100, "exit_below": 100},
            {"id": "L3", "enter_at": 100},
            {"id": "L4", "enter_at": 50, "exit_below": 60},
            {"id": "L5", "enter_at": 500, "exit_below": 501},
            stages=["grow", "mature"],
        ),
    )
    rise = "levels must rise: each enter_at above the one before"
    assert problems(doc) == [
        (("tiers", "stages", 1), "no stage 'mature'"),
        (("tiers", "levels", 2, "enter_at"), rise),
        (("tiers", "levels", 3, "enter_at"), rise),
        (("tiers", "levels", 3, "exit_below"), _EXIT),
        (("tiers", "levels", 4, "exit_below"), _EXIT),
    ]


_EXIT = "exit_below must be at or below enter_at (that gap is the hysteresis)"


def test_every_expression_is_compiled_in_the_names_its_place_allows() -> None:
    doc = document(
        [
            stage(
                "a",
                node(
                    "one",
                    complete_when='event == "Done"',
                    skip_when="crm.plan = 1",
                    next=[{"when": "properties.x > 1", "goto": "b"}, {"goto": "b"}],
                ),
                complete_when="tier == 'L1' and os.name",
                next=[{"when": "lambda: 1", "goto": "b"}],
            ),
            stage("b", node("two", complete_when='count("X", by="ceo") > 1')),
        ],
        tiers=tiers({"id": "L1", "enter_at": 0}, {"id": "L2", "enter_at": 5}, metric="user_id"),
        enrol_when='type == "group" and __import__("os")',
    )
    doc["tiers"]["stages"] = ["a"]
    found = problems(doc)
    assert [location for location, _message in found] == [
        ("enrol_when",),
        ("stages", 0, "complete_when"),
        ("stages", 0, "next", 0, "when"),
        ("stages", 0, "nodes", 0, "complete_when"),
        ("stages", 0, "nodes", 0, "skip_when"),
        ("stages", 0, "nodes", 0, "next", 0, "when"),
        ("stages", 1, "nodes", 0, "complete_when"),
        ("tiers", "metric"),
    ]
    messages = [message for _location, message in found]
    assert messages[0].startswith("unknown function; known: count")
    assert messages[1] == (
        "unknown name `os`; known: account, crm, days_enrolled, days_in_node, days_in_stage, "
        "days_to_renewal, score, stage, tier"
    )
    assert messages[2] == "lambda is not allowed in a condition"
    assert messages[3].startswith("`event` describes one event; here only account names")
    assert messages[4] == "syntax error: invalid syntax"
    assert messages[5].startswith("`properties` describes one event")
    assert messages[6].startswith("unknown role 'ceo'")
    assert messages[7].startswith("`user_id` describes one event")
    offsets = [found.offset for found in check_path(unchecked(doc))]
    assert offsets == [20, 17, 0, 0, 9, 0, 0, 0]


def test_a_valid_file_has_no_problems() -> None:
    doc = document(
        [stage("grow", node("one", due="P1D", escalations=[{"at": "P2D", "notify": ["admin"]}]))],
        tiers=tiers({"id": "L1", "enter_at": 0}, {"id": "L2", "enter_at": 5, "exit_below": 4}),
    )
    assert problems(doc) == []


# -- validation refuses a file with every problem -----------------------------------------


def test_validation_raises_every_problem_at_its_location() -> None:
    doc = document(
        [
            stage("a", node("one", next=[{"goto": "nowhere"}])),
            stage("a", node("two", complete_when="crm.x ==")),
        ]
    )
    with pytest.raises(ValidationError) as caught:
        GrowthPathFile.model_validate(doc)
    (error,) = caught.value.errors()
    problem = error["ctx"]["error"]
    assert isinstance(problem, DefinitionInvalid)
    assert [(found.location, found.message[:12]) for found in problem.each()] == [
        (("stages", 1, "nodes", 0, "complete_when"), "syntax error"),
        (("stages", 1, "id"), "id 'a' is al"),
        (("stages", 0, "nodes", 0, "next", 0, "goto"), "no stage or "),
    ]


def test_every_mistake_is_reported_in_one_run_at_its_line_and_column() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition("trial.yaml", GrowthPathFile, text=PATH_MISTAKES)
    found = [(p.line, p.column, p.field, p.message[:40]) for p in caught.value.problems]
    assert found == [
        (12, 25, "stages[0].nodes[0].notify[1]", "Input should be 'decision_maker', 'admin"),
        (15, 42, "stages[0].nodes[1].complete_when", "`event` describes one event; here only a"),
        (17, 19, "stages[0].nodes[1].next[0].goto", "no stage or node 'adoptoin'"),
        (25, 13, "stages[1].nodes[0].complete_when", "unknown role 'ceo'; roles: admin, decisi"),
    ]
    assert "column" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"due": "3 days"}, ("stages", 0, "nodes", 0, "due")),
        ({"due": "P0D"}, ("stages", 0, "nodes", 0, "due")),
        ({"reentry": "sometimes"}, ("stages", 0, "nodes", 0, "reentry")),
        ({"reentry": "PT0S"}, ("stages", 0, "nodes", 0, "reentry")),
        ({"due_from": "path"}, ("stages", 0, "nodes", 0, "due_from")),
        ({"notify": ["ceo"]}, ("stages", 0, "nodes", 0, "notify", 0)),
        (
            {"escalations": [{"at": "P1D", "notify": []}]},
            ("stages", 0, "nodes", 0, "escalations", 0, "notify"),
        ),
        (
            {"escalations": [{"at": "P1D", "notify": ["admin"], "action": "call"}]},
            ("stages", 0, "nodes", 0, "escalations", 0, "action"),
        ),
        (
            {"escalations": [{"at": "-P1D", "notify": ["admin"]}]},
            ("stages", 0, "nodes", 0, "escalations", 0, "at"),
        ),
        ({"id": "First Node"}, ("stages", 0, "nodes", 0, "id")),
        ({"colour": "red"}, ("stages", 0, "nodes", 0, "colour")),
    ],
)
def test_the_shape_is_validated_field_by_field(
    change: dict[str, Any], loc: tuple[Any, ...]
) -> None:
    doc = document([stage("a", node("one", **change))])
    with pytest.raises(ValidationError) as caught:
        GrowthPathFile.model_validate(doc)
    assert loc in [error["loc"] for error in caught.value.errors()]


def test_the_path_itself_is_validated() -> None:
    doc = document([stage("a", node("one"))], review_every="P0D")
    doc["business_type"] = "retail"
    with pytest.raises(ValidationError) as caught:
        GrowthPathFile.model_validate(doc)
    assert {error["loc"] for error in caught.value.errors()} == {
        ("business_type",),
        ("review_every",),
    }
    with pytest.raises(ValidationError):
        GrowthPathFile.model_validate(document([]))
    with pytest.raises(ValidationError):
        GrowthPathFile.model_validate(
            document([stage("a", node("one"))], tiers=tiers({"id": "L1", "enter_at": 0}))
        )
