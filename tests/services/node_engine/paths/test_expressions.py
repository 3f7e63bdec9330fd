"""The condition language: what compiles, what is refused (with a message and a column), and
how compiled expressions evaluate against an account and an event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.node_engine.errors import ConditionFailed, ExpressionError
from services.node_engine.paths.expressions import (
    MAX_EXPRESSION_LENGTH,
    Aggregate,
    AggregateKind,
    Expression,
    Names,
    aggregates_of,
    compile_expression,
)


@dataclass
class FakeScope:
    """Names as plain mappings: ``event`` by dotted path, ``account`` by dotted path, and
    aggregate figures by aggregate key."""

    event: Mapping[str, Any] = field(default_factory=dict)
    account: Mapping[str, Any] = field(default_factory=dict)
    figures: Mapping[str, float] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def event_value(self, path: tuple[str, ...]) -> Any:
        self.asked.append(".".join(path))
        return self.event.get(".".join(path))

    def account_value(self, path: tuple[str, ...]) -> Any:
        self.asked.append(".".join(path))
        return self.account.get(".".join(path))

    def aggregate(self, aggregate: Aggregate) -> float:
        return self.figures.get(aggregate.key, 0.0)


def account(source: str, **values: Any) -> Any:
    """Evaluate an account expression with ``crm.<key>`` facts."""
    scope = FakeScope(account={f"crm.{k}": v for k, v in values.items()})
    return compile_expression(source, Names.ACCOUNT).evaluate(scope)


def refused(source: str, names: Names = Names.ACCOUNT) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source, names)
    return caught.value


# -- refused, with a helpful message at the right column ---------------------------------


@pytest.mark.parametrize(
    ("source", "names", "message", "column"),
    [
        # attribute access on roots that are not names of the language
        ("os.system", Names.ACCOUNT, "unknown name `os`; known: account, crm,", 0),
        ('crm.plan == "pro" and foo.bar', Names.ACCOUNT, "unknown name `foo`", 22),
        ("self.__class__", Names.BOTH, "unknown name `self`", 0),
        ("x", Names.EVENT, "unknown name `x`; known: actor, event, properties,", 0),
        # calls to anything but the aggregates
        ('__import__("os")', Names.ACCOUNT, "unknown function; known: count, happened, sum", 0),
        ('open("/etc/passwd")', Names.ACCOUNT, "unknown function", 0),
        ('crm.plan.upper() == "PRO"', Names.ACCOUNT, "unknown function", 0),
        ('getattr(crm, "plan")', Names.ACCOUNT, "unknown function", 0),
        ('"".join(["a"])', Names.ACCOUNT, "unknown function", 0),
        ("any(x for x in [1])", Names.ACCOUNT, "unknown function", 0),
        # constructs outside the whitelist
        ("lambda: 1", Names.ACCOUNT, "lambda is not allowed in a condition", 0),
        ("(lambda x: x)(1)", Names.ACCOUNT, "unknown function", 0),
        ("[x for x in [1, 2]]", Names.ACCOUNT, "listcomp is not allowed", 0),
        ("{x for x in [1, 2]}", Names.ACCOUNT, "setcomp is not allowed", 0),
        ("{k: 1 for k in [1]}", Names.ACCOUNT, "dictcomp is not allowed", 0),
        ("(x for x in [1])", Names.ACCOUNT, "generatorexp is not allowed", 0),
        ("{1: 2}", Names.ACCOUNT, "dict is not allowed", 0),
        ("1 if crm.a else 2", Names.ACCOUNT, "ifexp is not allowed", 0),
        ('f"{crm.a}" == "x"', Names.ACCOUNT, "joinedstr is not allowed", 0),
        ("(y := 1)", Names.ACCOUNT, "namedexpr is not allowed", 1),
        ("crm.a ** 2", Names.ACCOUNT, "only + - * / are allowed", 0),
        ("crm.a % 2 == 0", Names.ACCOUNT, "only + - * / are allowed", 0),
        ("~crm.a", Names.ACCOUNT, "only `not` and `-` are allowed", 0),
        ("crm.a is None", Names.ACCOUNT, "use == != < <= > >= in / not in", 0),
        ('b"x" == crm.a', Names.ACCOUNT, "only text, numbers, true/false and None", 0),
        ("crm.a == 1j", Names.ACCOUNT, "only text, numbers, true/false and None", 9),
        ("crm.a in [crm.b]", Names.ACCOUNT, "expected a literal", 10),
        # subscripts take text keys only
        ("properties[0] == 1", Names.EVENT, "only text keys are allowed in [...]", 0),
        ("properties[crm.a]", Names.BOTH, "only text keys are allowed in [...]", 0),
        ('count("X")["n"] > 1', Names.ACCOUNT, "expected a name such as properties.amount", 0),
        # event names where only account names are allowed, and the other way round
        ('event == "Order Completed"', Names.ACCOUNT, "`event` describes one event", 0),
        ("properties.amount > 10", Names.ACCOUNT, "`properties` describes one event", 0),
        ('"admin" in actor.roles', Names.ACCOUNT, "`actor` describes one event", 11),
        ('crm.deal_stage == "won"', Names.EVENT, "`crm` describes the account", 0),
        ("tier == 'L2'", Names.EVENT, "`tier` describes the account", 0),
        ('count("Order") > 1', Names.EVENT, "count(...) is an account aggregate", 0),
        # aggregate arguments
        ("count(crm.a) > 1", Names.ACCOUNT, "expected a literal", 6),
        ("count(1) > 1", Names.ACCOUNT, "count() takes the event name as text", 0),
        ('count("A", "B")', Names.ACCOUNT, "count() takes 1 positional argument(s)", 0),
        ('sum("Order")', Names.ACCOUNT, "sum() needs the property to add up", 0),
        ('sum("Order", 3)', Names.ACCOUNT, "sum() needs the property to add up", 0),
        ('count("X", foo=1)', Names.ACCOUNT, "count() has no argument 'foo'; allowed: by,", 15),
        ('distinct_users("X", by="admin")', Names.ACCOUNT, "has no argument 'by'", 23),
        ('count("X", role="admin")', Names.ACCOUNT, "has no argument 'role'", 16),
        ('count("X", by="ceo")', Names.ACCOUNT, "unknown role 'ceo'; roles: admin,", 0),
        ('distinct_users("X", role="boss")', Names.ACCOUNT, "unknown role 'boss'", 0),
        ('count("X", within="7 days")', Names.ACCOUNT, "within=: expected an ISO 8601", 0),
        ('count("X", within="P0D")', Names.ACCOUNT, "within= must be longer than zero", 0),
        ('count("X", within=7)', Names.ACCOUNT, "within=: expected an ISO 8601", 0),
        ('count("X", where=1)', Names.ACCOUNT, "where= takes a filter expression as text", 0),
        (
            'count("X", where="crm.plan == 1")',
            Names.ACCOUNT,
            "in where='crm.plan == 1': `crm` describes the account",
            0,
        ),
        ('happened("X", where="count(None) > 1")', Names.ACCOUNT, "is an account aggregate", 0),
        # syntax
        ("crm.a = 1", Names.ACCOUNT, "syntax error: invalid syntax", 6),
        ("crm.a == 1 1", Names.ACCOUNT, "syntax error: invalid syntax", 11),
        ("crm.a == (1", Names.ACCOUNT, "syntax error: '(' was never closed", 9),
    ],
)
def test_forbidden_constructs_are_refused_with_a_message_and_column(
    source: str, names: Names, message: str, column: int | None
) -> None:
    error = refused(source, names)
    assert message in str(error)
    if column is not None:
        assert error.offset == column


def test_an_expression_must_be_a_non_empty_string_of_bounded_length() -> None:
    assert "non-empty" in str(refused(""))
    assert "non-empty" in str(refused("   "))
    too_long = "crm.a == 1 and " * 200 + "True"
    assert len(too_long) > MAX_EXPRESSION_LENGTH
    assert f"at most {MAX_EXPRESSION_LENGTH} characters" in str(refused(too_long))


@pytest.mark.parametrize(
    "source",
    [
        "-" * 1500 + "1",
        "not " * 480 + "True",
        "1 + " * 490 + "1",
        "crm.a * " * 200 + "1",
        "(crm.a == 1 and " * 70 + "True" + ")" * 70,
    ],
)
def test_deeply_nested_expressions_are_refused_not_a_crash(source: str) -> None:
    assert "an expression nests at most 64 levels" in str(refused(source))


def test_long_flat_expressions_and_redundant_parentheses_are_fine() -> None:
    flat = "crm.a == 1 and " * 120 + "True"
    assert account(flat, a=1) is True
    assert account("(" * 150 + "crm.a" + ")" * 150 + " == 1", a=1) is True
    assert account("1 + " * 60 + "crm.a", a=1) == 61


def test_the_unknown_name_message_lists_what_both_places_allow() -> None:
    message = str(refused("x", Names.BOTH))
    for name in ("event", "properties", "actor", "crm", "days_to_renewal", "tier"):
        assert name in message


# -- what compiles ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ('event == "Order Completed" and properties.amount >= 100', Names.EVENT),
        ('type == "group" or event in ["Signed Up", "Merchant Registered"]', Names.BOTH),
        ('properties["plan name"] == "pro" and traits.industry != "retail"', Names.EVENT),
        ('"admin" in actor.roles and user_id != None and source == "segment"', Names.EVENT),
        ('crm.deal_stage in ("won", "signed") and score.health > 40', Names.ACCOUNT),
        ("days_in_stage >= 3 and days_in_node < 7 or days_enrolled > 30", Names.ACCOUNT),
        ("days_to_renewal <= 90 and tier == 'L2' and stage == 'renewal'", Names.ACCOUNT),
        ('account.plan == "pro" and not account.churned', Names.ACCOUNT),
        ('sum("Order", "amount", within="P28D") / 28 > -1.5', Names.ACCOUNT),
        (
            'distinct_users(None, role="end_user", where="properties.ok == True") >= 3',
            Names.ACCOUNT,
        ),
        ('happened("Listing Published", by="admin", within="PT12H")', Names.ACCOUNT),
        ('count(event="Order", within="P1W") >= 15', Names.ACCOUNT),
        ('sum(event="Order", property="amount") > 0', Names.ACCOUNT),
    ],
)
def test_whitelisted_expressions_compile(source: str, names: Names) -> None:
    expression = compile_expression(source, names)
    assert isinstance(expression, Expression)
    assert expression.source == source


def test_the_source_is_kept_stripped() -> None:
    assert compile_expression("  crm.a == 1\n", Names.ACCOUNT).source == "crm.a == 1"


# -- evaluation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("crm.missing > 1", False),
        ("crm.missing < 1", False),
        ("crm.missing >= 0", False),
        ("crm.missing <= 0", False),
        ("1 < crm.missing", False),
        ("crm.missing == None", True),
        ("crm.missing != 1", True),
        ("not crm.missing", True),
        ("crm.missing + 1 == None", True),
        ("crm.missing * 2 > 0", False),
        ("crm.missing in ['a', 'b']", False),
        ("'a' in crm.missing", False),
        ("'a' not in crm.missing", True),
    ],
)
def test_a_missing_value_is_none_and_ordering_with_none_is_false(
    source: str, expected: bool
) -> None:
    assert account(source) is expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, False), (1, False), (2, True), (9, True), (10, False), (None, False)],
)
def test_chained_comparisons_hold_pairwise(n: int | None, expected: bool) -> None:
    assert account("1 < crm.n < 10", n=n) is expected


def test_a_chained_comparison_stops_at_the_first_false_pair() -> None:
    scope = FakeScope(account={"crm.a": 5, "crm.b": 1})
    assert compile_expression("crm.a < crm.b < crm.c", Names.ACCOUNT).test(scope) is False
    assert scope.asked == ["crm.a", "crm.b"]


@pytest.mark.parametrize(
    ("source", "values", "expected"),
    [
        ('crm.deal_stage in ["won", "signed"]', {"deal_stage": "won"}, True),
        ('crm.deal_stage in ["won", "signed"]', {"deal_stage": "lost"}, False),
        ('crm.deal_stage not in ("won", "signed")', {"deal_stage": "lost"}, True),
        ('"pro" in crm.plans', {"plans": ["basic", "pro"]}, True),
        ('"pro" in crm.plan_name', {"plan_name": "pro annual"}, True),
        ("crm.n in [1, 2.5, -3]", {"n": -3}, True),
        ("crm.flag in [True, None]", {"flag": None}, True),
    ],
)
def test_membership(source: str, values: dict[str, Any], expected: bool) -> None:
    assert account(source, **values) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("crm.a + crm.b * 2", 5),
        ("(crm.a + crm.b) * 2", 6),
        ("crm.a - crm.b - 1", -2),
        ("crm.a / crm.b", 0.5),
        ("-crm.a + 10", 9.0),
        ("crm.a + 0.5", 1.5),
        ('crm.text + "!"', "hi!"),
    ],
)
def test_arithmetic(source: str, expected: Any) -> None:
    assert account(source, a=1, b=2, text="hi") == expected


def test_boolean_operators_short_circuit_and_give_booleans() -> None:
    assert account("crm.a == 1 and crm.b == 2", a=1, b=2) is True
    assert account("crm.a == 1 and crm.b == 2", a=1, b=3) is False
    assert account("crm.a == 9 or crm.b == 2", a=1, b=2) is True
    assert account("crm.a or crm.b", a=0, b="x") is True
    scope = FakeScope(account={"crm.a": 0})
    assert compile_expression("crm.a == 1 and crm.b > 0", Names.ACCOUNT).test(scope) is False
    assert scope.asked == ["crm.a"]


@pytest.mark.parametrize(
    ("source", "values", "message"),
    [
        ("crm.stage > 3", {"stage": "won"}, "'>' not supported"),
        ("crm.n <= 'ten'", {"n": 3}, "'<=' not supported"),
        ("crm.a / crm.b > 1", {"a": 1, "b": 0}, "division by zero"),
        ("crm.a + 1 > 0", {"a": "text"}, "can only concatenate"),
        ("-crm.a > 0", {"a": "text"}, "bad operand type"),
        ("1 in crm.a", {"a": 5}, "not iterable"),
    ],
)
def test_a_type_error_at_evaluation_is_condition_failed_naming_the_expression(
    source: str, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConditionFailed) as caught:
        account(source, **values)
    assert str(caught.value).startswith(repr(source))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "source",
    ['crm.text * 1000000000000 == ""', "crm.items * 3 == crm.items", '"ab" * crm.n == ""'],
)
def test_repetition_of_text_or_lists_fails_instead_of_eating_memory(source: str) -> None:
    with pytest.raises(ConditionFailed, match="number"):
        account(source, text="x", items=[1], n=10**12)


def test_numbers_multiply_including_booleans() -> None:
    assert account("crm.n * 2.5", n=4) == 10.0
    assert account("crm.flag * 3", flag=True) == 3


def test_dotted_names_and_text_subscripts_read_the_same_path() -> None:
    scope = FakeScope(event={"properties.plan name": "pro", "properties.amount": 12})
    expression = compile_expression(
        'properties["plan name"] == "pro" and properties.amount == 12', Names.EVENT
    )
    assert expression.test(scope) is True
    assert scope.asked == ["properties.plan name", "properties.amount"]


def test_dunder_names_are_data_paths_never_python_attributes() -> None:
    scope = FakeScope()
    expression = compile_expression("properties.__class__.__subclasses__ == None", Names.EVENT)
    assert expression.test(scope) is True
    assert scope.asked == ["properties.__class__.__subclasses__"]


# -- aggregates ---------------------------------------------------------------------------


def test_an_aggregate_call_describes_its_figure() -> None:
    expression = compile_expression(
        'count("Order Completed", where="properties.amount > 10", by="admin", within="P7D") >= 15',
        Names.ACCOUNT,
    )
    (aggregate,) = expression.aggregates
    assert aggregate.kind is AggregateKind.COUNT
    assert aggregate.event == "Order Completed"
    assert aggregate.prop is None
    assert aggregate.where_source == "properties.amount > 10"
    assert aggregate.role == "admin"
    assert aggregate.window_seconds == 7 * 86400
    assert aggregate.key == "count|Order Completed||properties.amount > 10|admin|604800"


@pytest.mark.parametrize(
    ("source", "kind", "key"),
    [
        ('sum("Order", "amount", within="P28D")', AggregateKind.SUM, "sum|Order|amount|||2419200"),
        ('sum("Order", "amount")', AggregateKind.SUM, "sum|Order|amount|||"),
        (
            'distinct_users(None, role="end_user", within="PT36H")',
            AggregateKind.DISTINCT_USERS,
            "distinct_users|*|||end_user|129600",
        ),
        ('happened("Listing Published")', AggregateKind.COUNT, "count|Listing Published||||"),
    ],
)
def test_aggregate_keys(source: str, kind: AggregateKind, key: str) -> None:
    (aggregate,) = compile_expression(source, Names.ACCOUNT).aggregates
    assert aggregate.kind is kind
    assert aggregate.key == key


def test_equal_aggregates_are_one_figure_and_happened_shares_count() -> None:
    expression = compile_expression(
        'happened("Order") and count("Order") >= 10 and count( "Order" ) < 100', Names.ACCOUNT
    )
    assert len(expression.aggregates) == 1
    other = compile_expression('count("Order") > 0', Names.ACCOUNT)
    assert other.aggregates == expression.aggregates
    assert hash(other.aggregates[0]) == hash(expression.aggregates[0])


def test_happened_is_at_least_one_and_count_is_the_figure() -> None:
    happened = compile_expression('happened("Order")', Names.ACCOUNT)
    count = compile_expression('count("Order")', Names.ACCOUNT)
    key = count.aggregates[0].key
    assert happened.evaluate(FakeScope()) is False
    assert happened.evaluate(FakeScope(figures={key: 1.0})) is True
    assert count.evaluate(FakeScope(figures={key: 7.0})) == 7.0


def test_aggregates_of_lists_distinct_aggregates_in_first_use_order() -> None:
    first = compile_expression('count("B") > 1 and count("A") > 1', Names.ACCOUNT)
    second = compile_expression('count("A") > 2 or sum("C", "x") > 0', Names.ACCOUNT)
    keys = [a.key for a in aggregates_of([first, None, second])]
    assert keys == ["count|B||||", "count|A||||", "sum|C|x|||"]


@pytest.mark.parametrize(
    ("source", "event", "expected"),
    [
        ('count("Order")', {"event": "Order"}, True),
        ('count("Order")', {"event": "Refund"}, False),
        ("count(None)", {"event": "Anything"}, True),
        ('count("Order", by="admin")', {"event": "Order", "actor.roles": ("admin",)}, True),
        (
            'count("Order", by="admin")',
            {"event": "Order", "actor.roles": ("end_user",)},
            False,
        ),
        ('count("Order", by="admin")', {"event": "Order"}, False),
        (
            'distinct_users(None, role="end_user")',
            {"event": "Login", "actor.roles": ("admin", "end_user")},
            True,
        ),
        (
            'count("Order", where="properties.amount >= 100")',
            {"event": "Order", "properties.amount": 150},
            True,
        ),
        (
            'count("Order", where="properties.amount >= 100")',
            {"event": "Order", "properties.amount": 50},
            False,
        ),
        (
            'count("Order", where="properties.amount >= 100")',
            {"event": "Order"},
            False,
        ),
    ],
)
def test_an_aggregate_matches_by_name_role_and_filter(
    source: str, event: dict[str, Any], expected: bool
) -> None:
    (aggregate,) = compile_expression(source, Names.ACCOUNT).aggregates
    assert aggregate.matches(FakeScope(event=event)) is expected


def test_a_filter_failing_on_an_event_is_condition_failed() -> None:
    (aggregate,) = compile_expression(
        'count("Order", where="properties.amount > 100")', Names.ACCOUNT
    ).aggregates
    with pytest.raises(ConditionFailed, match=r"properties\.amount > 100"):
        aggregate.matches(FakeScope(event={"event": "Order", "properties.amount": "lots"}))


@pytest.mark.parametrize(
    ("source", "events"),
    [
        ('event == "Order Completed"', {("event", "Order Completed")}),
        ('"group" == type and traits.plan == "pro"', {("type", "group")}),
        ('event in ["A", "B"] and properties.n > 1', {("event", "A"), ("event", "B")}),
        (
            '(type == "group" and traits.business_type in [None, "platform"]) '
            'or event == "Merchant Registered"',
            {("type", "group"), ("event", "Merchant Registered")},
        ),
        ('type == "group" or properties.vip == True', None),
        ('not event == "A"', None),
        ("event == 5", None),
        ('event in ["A", 1]', None),
    ],
)
def test_the_events_an_expression_needs_to_hold(
    source: str, events: set[tuple[str, str]] | None
) -> None:
    expression = compile_expression(source, Names.BOTH)

    assert expression.events == (None if events is None else frozenset(events))


@pytest.mark.parametrize(
    ("type_", "name"),
    [("group", None), ("track", "Merchant Registered"), ("track", "Order"), ("identify", None)],
)
def test_an_expression_skipped_for_an_event_is_false_for_it(type_: str, name: str | None) -> None:
    expression = compile_expression(
        '(type == "group" and traits.business_type in [None, "platform"]) '
        'or event == "Merchant Registered"',
        Names.BOTH,
    )
    scope = FakeScope(event={"type": type_, "event": name, "traits.business_type": "platform"})
    expected = type_ == "group" or name == "Merchant Registered"

    assert expression.may_hold_for(type_, name) is expected
    assert expression.test(scope) is expected


def test_an_account_condition_may_hold_for_every_event() -> None:
    expression = compile_expression('happened("Order Completed")', Names.ACCOUNT)

    assert expression.events is None
    assert expression.may_hold_for("track", "Page Viewed")
