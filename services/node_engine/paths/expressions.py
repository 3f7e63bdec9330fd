"""The condition language of growth paths: a safe subset of Python expressions.

An expression is parsed once, checked against a whitelist (literals, ``and``/``or``/``not``,
comparisons, ``in``, arithmetic, dotted names, and a few aggregate functions with literal
arguments) and compiled into closures, so evaluating it per event parses nothing and can
run no arbitrary code.

Two kinds of names exist, and each place in a growth path allows one or both:

* **event names** describe the event being handled: ``event`` (its name), ``type``,
  ``source``, ``user_id``, ``properties.<key>``, ``traits.<key>``, ``actor.roles``;
* **account names** describe the account: ``crm.<fact>``, ``score.<field>``,
  ``account.<trait>``, ``tier``, ``stage``, ``days_in_stage``, ``days_in_node``,
  ``days_enrolled``, ``days_to_renewal``, and the aggregates below.

Aggregates are kept incrementally per account (never a rescan of history):
``count(name, where=, by=, within=)``, ``sum(name, property, where=, by=, within=)``,
``distinct_users(name, role=, where=, within=)`` and ``happened(name, where=, by=,
within=)``. ``name`` may be ``None`` for any event, ``where`` is an event-names expression
in a string, ``by``/``role`` is the acting user's role, ``within`` an ISO 8601 duration.

A missing value is ``None``; ordering comparisons with ``None`` are false. Other type errors
at evaluation raise :class:`ConditionFailed`.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from services.node_engine.errors import ConditionFailed, ExpressionError
from shared.contracts.crm import ContactRole
from shared.durations import parse_duration

EVENT_ROOTS = frozenset({"event", "type", "source", "user_id", "properties", "traits", "actor"})
ACCOUNT_ROOTS = frozenset(
    {
        "crm",
        "score",
        "account",
        "tier",
        "stage",
        "days_in_stage",
        "days_in_node",
        "days_enrolled",
        "days_to_renewal",
    }
)
MAX_EXPRESSION_LENGTH = 2000
MAX_NESTING = 64
"""How deeply operations may nest: bounds the compiler's and the evaluator's recursion."""


class Names(Enum):
    """Which names an expression may read where it is written."""

    EVENT = "event"
    """``where`` filters: the event only."""
    ACCOUNT = "account"
    """Completions, branches, skips, tier metrics: the account and its aggregates."""
    BOTH = "both"
    """Enrolment: the event that may enrol and the account it belongs to."""


class AggregateKind(Enum):
    COUNT = "count"
    SUM = "sum"
    DISTINCT_USERS = "distinct_users"


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One incrementally kept account figure. Equal aggregates share their state."""

    kind: AggregateKind
    event: str | None
    prop: str | None
    where_source: str | None
    role: str | None
    window_seconds: int | None
    where: Expression | None = field(default=None, compare=False, hash=False, repr=False)
    key: str = field(init=False, compare=False, hash=False, repr=False)
    """A stable name for this aggregate's stored state (computed once)."""

    def __post_init__(self) -> None:
        parts = [
            self.kind.value,
            self.event or "*",
            self.prop or "",
            self.where_source or "",
            self.role or "",
            str(self.window_seconds or ""),
        ]
        object.__setattr__(self, "key", "|".join(parts))

    def matches(self, scope: Scope) -> bool:
        """Whether the event in ``scope`` counts towards this aggregate."""
        if self.event is not None and scope.event_value(("event",)) != self.event:
            return False
        if self.role is not None and self.role not in (scope.event_value(("actor", "roles")) or ()):
            return False
        return self.where is None or self.where.test(scope)


class Scope(Protocol):
    """What an expression reads while it is evaluated."""

    def event_value(self, path: tuple[str, ...]) -> Any:
        """An event name's value, e.g. ``("properties", "amount")``; ``None`` when absent."""
        ...

    def account_value(self, path: tuple[str, ...]) -> Any:
        """An account name's value, e.g. ``("crm", "deal_stage")``; ``None`` when absent."""
        ...

    def aggregate(self, aggregate: Aggregate) -> float:
        """The aggregate's current value for the account."""
        ...


Evaluator = Callable[[Scope], Any]


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression. Evaluating it never parses and never raises but
    :class:`ConditionFailed`."""

    source: str
    aggregates: tuple[Aggregate, ...]
    _evaluate: Evaluator = field(repr=False, compare=False)
    events: frozenset[tuple[str, str]] | None = None
    """Without one of these ``("event", name)`` or ``("type", type)`` the expression cannot
    hold; ``None`` when any event may make it hold (see :func:`_needed_events`)."""

    def may_hold_for(self, type_: str, name: str | None) -> bool:
        """``False`` only when the expression is false for every event of this type and
        name, whatever the account: the condition need not be evaluated."""
        events = self.events
        return events is None or ("type", type_) in events or ("event", name or "") in events

    def evaluate(self, scope: Scope) -> Any:
        try:
            return self._evaluate(scope)
        except ConditionFailed:
            raise
        except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
            raise ConditionFailed(f"{self.source!r}: {exc}") from exc

    def test(self, scope: Scope) -> bool:
        return bool(self.evaluate(scope))


def compile_expression(source: str, names: Names) -> Expression:
    """Parse and check ``source`` once; raise :class:`ExpressionError` with the offset."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("an expression must be a non-empty string")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(f"an expression is at most {MAX_EXPRESSION_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        at = _offset(source, exc.lineno or 1, (exc.offset or 1) - 1)
        raise ExpressionError(f"syntax error: {exc.msg}", offset=at) from exc
    except (RecursionError, MemoryError) as exc:
        raise ExpressionError(f"an expression nests at most {MAX_NESTING} levels") from exc
    compiler = _Compiler(names, source)
    try:
        evaluate = compiler.visit(tree.body)
    except RecursionError as exc:
        raise ExpressionError(f"an expression nests at most {MAX_NESTING} levels") from exc
    return Expression(
        source.strip(),
        tuple(dict.fromkeys(compiler.aggregates)),
        evaluate,
        _needed_events(tree.body) if names is not Names.ACCOUNT else None,
    )


def _needed_events(node: ast.expr) -> frozenset[tuple[str, str]] | None:
    """The events (``("event", name)`` / ``("type", type)``) one of which must be handled
    for ``node`` to hold, from ``event == "X"``, ``type == "t"``, ``event in [...]`` and how
    ``and``/``or`` combine them; ``None`` when the expression says nothing about it."""
    if isinstance(node, ast.BoolOp):
        parts = [_needed_events(value) for value in node.values]
        if isinstance(node.op, ast.And):
            known = [part for part in parts if part is not None]
            return min(known, key=len) if known else None
        if any(part is None for part in parts):
            return None
        return frozenset().union(*(part for part in parts if part is not None))
    if not isinstance(node, ast.Compare) or len(node.ops) != 1:
        return None
    left, op, right = node.left, node.ops[0], node.comparators[0]
    if isinstance(op, ast.Eq):
        for name, value in ((left, right), (right, left)):
            root = _event_root(name)
            if root is not None and isinstance(value, ast.Constant):
                return frozenset({(root, value.value)}) if isinstance(value.value, str) else None
    root = _event_root(left)
    if isinstance(op, ast.In) and root is not None and isinstance(right, ast.List | ast.Tuple):
        values: list[str] = [
            item.value
            for item in right.elts
            if isinstance(item, ast.Constant) and isinstance(item.value, str)
        ]
        if len(values) == len(right.elts):
            return frozenset((root, value) for value in values)
    return None


def _event_root(node: ast.expr) -> str | None:
    """``"event"`` or ``"type"`` when ``node`` is that bare name."""
    return node.id if isinstance(node, ast.Name) and node.id in ("event", "type") else None


def _offset(source: str, line: int, column: int, *, in_bytes: bool = False) -> int:
    """The index in ``source`` of 1-based ``line`` and 0-based ``column`` of its stripped
    text (as ``ast`` counts them: node columns in UTF-8 bytes)."""
    stripped = source.strip()
    lines = stripped.split("\n")
    text = lines[min(line, len(lines)) - 1]
    if in_bytes:
        column = len(text.encode()[:column].decode(errors="ignore"))
    before = sum(len(part) + 1 for part in lines[: line - 1])
    return len(source) - len(source.lstrip()) + before + column


def _lt(a: Any, b: Any) -> bool:
    return a is not None and b is not None and bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return a is not None and b is not None and bool(a <= b)


def _gt(a: Any, b: Any) -> bool:
    return a is not None and b is not None and bool(a > b)


def _ge(a: Any, b: Any) -> bool:
    return a is not None and b is not None and bool(a >= b)


def _contains(a: Any, b: Any) -> bool:
    return b is not None and a in b


def _not_contains(a: Any, b: Any) -> bool:
    return b is None or a not in b


def _multiply(a: Any, b: Any) -> Any:
    """Numbers only: repeating a text or a list could take any amount of memory."""
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        raise TypeError(f"* takes numbers, not {type(a).__name__} and {type(b).__name__}")
    return a * b


_COMPARISONS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: _lt,
    ast.LtE: _le,
    ast.Gt: _gt,
    ast.GtE: _ge,
    ast.In: _contains,
    ast.NotIn: _not_contains,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: _multiply,
    ast.Div: operator.truediv,
}
_AGGREGATE_FUNCTIONS = {
    "count": AggregateKind.COUNT,
    "happened": AggregateKind.COUNT,
    "sum": AggregateKind.SUM,
    "distinct_users": AggregateKind.DISTINCT_USERS,
}
_ROLES = frozenset(role.value for role in ContactRole)


class _Compiler:
    def __init__(self, names: Names, source: str) -> None:
        self.names = names
        self.source = source
        self.aggregates: list[Aggregate] = []
        self.depth = 0

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        line, column = getattr(node, "lineno", None), getattr(node, "col_offset", None)
        if line is None or column is None:
            return ExpressionError(message)
        return ExpressionError(message, offset=_offset(self.source, line, column, in_bytes=True))

    def visit(self, node: ast.expr) -> Evaluator:
        handlers: dict[type[ast.expr], Callable[[Any], Evaluator]] = {
            ast.Constant: self.constant,
            ast.List: self.sequence,
            ast.Tuple: self.sequence,
            ast.BoolOp: self.bool_op,
            ast.UnaryOp: self.unary_op,
            ast.BinOp: self.bin_op,
            ast.Compare: self.compare,
            ast.Name: self.name,
            ast.Attribute: self.name,
            ast.Subscript: self.name,
            ast.Call: self.call,
        }
        handler = handlers.get(type(node))
        if handler is None:
            raise self.fail(node, f"{type(node).__name__.lower()} is not allowed in a condition")
        if self.depth >= MAX_NESTING:
            raise self.fail(node, f"an expression nests at most {MAX_NESTING} levels")
        self.depth += 1
        try:
            return handler(node)
        finally:
            self.depth -= 1

    def constant(self, node: ast.Constant) -> Evaluator:
        value = node.value
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise self.fail(node, "only text, numbers, true/false and None are literals")
        return lambda _scope: value

    def sequence(self, node: ast.List | ast.Tuple) -> Evaluator:
        items = tuple(self.literal(item) for item in node.elts)
        return lambda _scope: items

    def bool_op(self, node: ast.BoolOp) -> Evaluator:
        parts = [self.visit(value) for value in node.values]
        if isinstance(node.op, ast.And):
            return lambda scope: all(part(scope) for part in parts)
        return lambda scope: any(part(scope) for part in parts)

    def unary_op(self, node: ast.UnaryOp) -> Evaluator:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda scope: not operand(scope)
        if isinstance(node.op, ast.USub):
            return lambda scope: -operand(scope)
        raise self.fail(node, "only `not` and `-` are allowed before a value")

    def bin_op(self, node: ast.BinOp) -> Evaluator:
        function = _ARITHMETIC.get(type(node.op))
        if function is None:
            raise self.fail(node, "only + - * / are allowed")
        left, right = self.visit(node.left), self.visit(node.right)

        def arithmetic(scope: Scope) -> Any:
            a, b = left(scope), right(scope)
            return None if a is None or b is None else function(a, b)

        return arithmetic

    def compare(self, node: ast.Compare) -> Evaluator:
        operands = [self.visit(node.left), *(self.visit(c) for c in node.comparators)]
        tests: list[Callable[[Any, Any], bool]] = []
        for op in node.ops:
            compare = _COMPARISONS.get(type(op))
            if compare is None:
                raise self.fail(node, "use == != < <= > >= in / not in to compare")
            tests.append(compare)

        def comparison(scope: Scope) -> bool:
            left = operands[0](scope)
            for test, operand in zip(tests, operands[1:], strict=True):
                right = operand(scope)
                if not test(left, right):
                    return False
                left = right
            return True

        return comparison

    def name(self, node: ast.Name | ast.Attribute | ast.Subscript) -> Evaluator:
        path = self.dotted(node)
        root = path[0]
        if root in EVENT_ROOTS:
            if self.names is Names.ACCOUNT:
                raise self.fail(
                    node,
                    f"`{root}` describes one event; here only account names "
                    f"({', '.join(sorted(ACCOUNT_ROOTS))}) and aggregates such as "
                    "count(...) are allowed",
                )
            return lambda scope: scope.event_value(path)
        if root in ACCOUNT_ROOTS:
            if self.names is Names.EVENT:
                raise self.fail(node, f"`{root}` describes the account; a filter reads the event")
            return lambda scope: scope.account_value(path)
        allowed = {
            Names.EVENT: EVENT_ROOTS,
            Names.ACCOUNT: ACCOUNT_ROOTS,
            Names.BOTH: EVENT_ROOTS | ACCOUNT_ROOTS,
        }[self.names]
        raise self.fail(node, f"unknown name `{root}`; known: {', '.join(sorted(allowed))}")

    def dotted(self, node: ast.expr) -> tuple[str, ...]:
        if isinstance(node, ast.Name):
            return (node.id,)
        if isinstance(node, ast.Attribute):
            return (*self.dotted(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            key = node.slice
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                raise self.fail(
                    node, "only text keys are allowed in [...], e.g. properties['plan']"
                )
            return (*self.dotted(node.value), key.value)
        raise self.fail(node, "expected a name such as properties.amount")

    def literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, str | int | float | bool) or node.value is None
        ):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            value = self.literal(node.operand)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return -value
        raise self.fail(node, "expected a literal (text, number, true/false, None)")

    def call(self, node: ast.Call) -> Evaluator:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        kind = _AGGREGATE_FUNCTIONS.get(name or "")
        if kind is None:
            raise self.fail(node, f"unknown function; known: {', '.join(_AGGREGATE_FUNCTIONS)}")
        if self.names is Names.EVENT:
            raise self.fail(node, f"{name}(...) is an account aggregate; a filter reads the event")
        aggregate = self.aggregate(node, str(name), kind)
        self.aggregates.append(aggregate)
        if name == "happened":
            return lambda scope: scope.aggregate(aggregate) >= 1
        return lambda scope: scope.aggregate(aggregate)

    def aggregate(self, node: ast.Call, name: str, kind: AggregateKind) -> Aggregate:
        positional = ["event", "property"] if kind is AggregateKind.SUM else ["event"]
        if len(node.args) > len(positional):
            raise self.fail(node, f"{name}() takes {len(positional)} positional argument(s)")
        values: dict[str, Any] = {}
        for param, arg in zip(positional, node.args, strict=False):
            values[param] = self.literal(arg)
        allowed = {"where", "within", "role" if kind is AggregateKind.DISTINCT_USERS else "by"}
        allowed.update(positional)
        for keyword in node.keywords:
            if keyword.arg not in allowed:
                raise self.fail(
                    keyword.value,
                    f"{name}() has no argument {keyword.arg!r}; allowed: {', '.join(sorted(allowed))}",
                )
            values[keyword.arg] = self.literal(keyword.value)
        if kind is AggregateKind.SUM and not isinstance(values.get("property"), str):
            raise self.fail(node, "sum() needs the property to add up, e.g. sum('Order', 'amount')")
        event = values.get("event")
        if event is not None and not isinstance(event, str):
            raise self.fail(node, f"{name}() takes the event name as text (or None for any)")
        role = values.get("by", values.get("role"))
        if role is not None and role not in _ROLES:
            raise self.fail(node, f"unknown role {role!r}; roles: {', '.join(sorted(_ROLES))}")
        where_source = values.get("where")
        where = None
        if where_source is not None:
            if not isinstance(where_source, str):
                raise self.fail(node, "where= takes a filter expression as text")
            try:
                where = compile_expression(where_source, Names.EVENT)
            except ExpressionError as exc:
                raise self.fail(node, f"in where={where_source!r}: {exc}") from exc
        window = values.get("within")
        window_seconds = None
        if window is not None:
            try:
                window_seconds = int(parse_duration(str(window)).total_seconds())
            except ValueError as exc:
                raise self.fail(node, f"within=: {exc}") from exc
            if window_seconds <= 0:
                raise self.fail(node, "within= must be longer than zero")
        return Aggregate(
            kind=kind,
            event=event,
            prop=values.get("property"),
            where_source=where.source if where else None,
            role=role,
            window_seconds=window_seconds,
            where=where,
        )


def aggregates_of(expressions: Sequence[Expression | None]) -> tuple[Aggregate, ...]:
    """Every distinct aggregate the expressions read, in first-use order."""
    return tuple(
        dict.fromkeys(a for expression in expressions if expression for a in expression.aggregates)
    )
