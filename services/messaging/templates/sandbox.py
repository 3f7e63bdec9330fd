"""The Jinja2 sandbox templates render in, with a :class:`Budget` checked while they run.

On top of :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` (no private attributes,
no unsafe callables, no changing lists or mappings), the generated code spends the budget
of the render in progress (:func:`spending`):

- every loop iteration, call, arithmetic operator, filter, test and piece of output
  checks the time limit, so no construct runs on unchecked (loops in loops, recursive
  macros);
- every piece of output counts against the output limit, in macros and blocks too;
- ``*``, ``**``, ``%``, ``~``, string formatting, widths and the filters that can make
  large text (``center``, ``indent``, ``wordwrap``, ``format``, ``replace``, ``join``,
  ``batch``, ``slice``, ``tojson``, ``pprint``) are checked before they build their
  result, and every value an operator, call, filter or literal makes is checked after;
- ``range()`` is bounded, calls nest only so deep, ``lipsum()`` is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from jinja2 import StrictUndefined, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.messaging.errors import TemplateFailed, TemplateLimitExceeded
from services.messaging.templates.limits import (
    Budget,
    TemplateLimits,
    check_format_fields,
    check_percent_format,
    is_integer,
    measure,
    replaced_size,
)

Check = Callable[..., Any]
"""Checks a filter's arguments before it runs: ``(budget, value, *args, **kwargs)`` ->
the value to filter."""
_BUDGET: ContextVar[Budget | None] = ContextVar("milepost_template_budget", default=None)


@contextmanager
def spending(limits: TemplateLimits) -> Iterator[Budget]:
    """Templates rendered inside spend one new budget with ``limits``."""
    token = _BUDGET.set(Budget(limits))
    try:
        yield current()
    finally:
        _BUDGET.reset(token)


def current() -> Budget:
    budget = _BUDGET.get()
    if budget is None:
        raise TemplateFailed("a template ran outside rendering")  # a bug, never a template's
    return budget


HOOKS = frozenset(("iterate", "written"))
"""The environment's methods the generated code calls around loops and output."""


def hooked(expr: nodes.Node, hook: str) -> nodes.Expr:
    """``expr`` passed through ``environment.<hook>(...)`` (a call, so it spends too)."""
    if isinstance(expr, nodes.Call) and isinstance(expr.node, nodes.EnvironmentAttribute):
        return expr  # visited before
    return nodes.Call(nodes.EnvironmentAttribute(hook), [expr], [], None, None, lineno=expr.lineno)


class BudgetedCode(CodeGenerator):
    """Generated code that spends the budget: loops, output, ``~`` and literals."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:  # noqa: N802 (Jinja's names)
        node.iter = hooked(node.iter, "iterate")
        super().visit_For(node, frame)

    def visit_Output(self, node: nodes.Output, frame: Frame) -> None:  # noqa: N802 (Jinja's names)
        node.nodes = [hooked(child, "written") for child in node.nodes]
        super().visit_Output(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802 (Jinja's names)
        self.write("environment.joined((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:  # noqa: N802 (Jinja's names)
        self.write("environment.made(")
        super().visit_List(node, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:  # noqa: N802 (Jinja's names)
        self.write("environment.made(")
        super().visit_Dict(node, frame)
        self.write(")")

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:  # noqa: N802 (Jinja's names)
        if node.ctx != "load":  # an assignment target
            super().visit_Tuple(node, frame)
            return
        self.write("environment.made(")
        super().visit_Tuple(node, frame)
        self.write(")")


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox every template compiles in; rendering needs :func:`spending` around it."""

    code_generator_class = BudgetedCode
    intercepted_binops = frozenset(("+", "-", "*", "/", "//", "%", "**"))

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False)
        self.globals["range"] = bounded_range
        del self.globals["lipsum"]  # n paragraphs of lorem ipsum: nothing a message needs
        self.filters = {
            name: budgeted(name, f, FILTER_CHECKS.get(name)) for name, f in self.filters.items()
        }
        # a test runs once per item in select/reject (`in` walks a list): it spends too
        tests = cast(dict[str, Callable[..., Any]], self.tests)  # this environment's copy
        for name, test in list(tests.items()):
            tests[name] = budgeted(name, test, None)

    def iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        budget = current()
        for item in iterable:
            budget.tick()
            yield item

    def written(self, value: Any) -> str:
        return current().write(value if isinstance(value, str) else str(value))

    def made(self, value: Any) -> Any:
        budget = current()
        budget.tick()
        return budget.made(value)

    def joined(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b``: each part as text, refused before joining when too long together."""
        budget = current()
        budget.tick()
        texts = [part if isinstance(part, str) else str(part) for part in parts]
        budget.fits(sum(len(text) for text in texts), "a string")
        return "".join(texts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = current()
        budget.tick()
        check_binop(budget, operator, left, right)
        return budget.made(self.binop_table[operator](left, right))

    def call(
        __self,  # noqa: N805 (the base class's name, kept free for keyword arguments)
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if getattr(__obj, "__self__", None) is __self and __obj.__name__ in HOOKS:
            return __obj(*args)  # a hook of the generated code: it spends on its own
        budget = current()
        budget.tick()
        args = check_method_call(budget, __obj, args, kwargs)
        budget.enter()
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.leave()
        return budget.made(result)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``"...".format``: its widths checked before it formats, its result after."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text: str = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> str:
            budget = current()
            check_format_fields(budget, text)
            return budget.made(wrapped(*args, **kwargs))

        return bounded


def bounded_range(*args: int) -> range:
    """``range()``, refused over the range limit."""
    found = range(*args)
    limit = current().limits.range_items
    try:
        items = len(found)
    except OverflowError:
        items = limit + 1
    if items > limit:
        raise TemplateLimitExceeded("range", f"range() of {items} items, over {limit}")
    return found


def check_binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    """Refuse an operator whose result would be over a limit, before computing it."""
    if operator == "**" and is_integer(left) and is_integer(right) and right > 0:
        if abs(left) > 1:
            budget.bits(left.bit_length() * right)
    elif operator == "*" and is_integer(left) and is_integer(right):
        budget.bits(left.bit_length() + right.bit_length())
    elif operator == "*" and (is_integer(left) or is_integer(right)):
        times, repeated = (left, right) if is_integer(left) else (right, left)
        if times > 0:
            cap = budget.limits.output_chars
            each = len(repeated) if isinstance(repeated, str | bytes) else measure(repeated, cap)
            budget.fits(each * times, "a repeated string or list")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(budget, left)


def check_method_call(
    budget: Budget, method: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> tuple[Any, ...]:
    """Refuse a string or number method that would make too much (``center``, ``zfill``,
    ``expandtabs``, ``replace``, ``join``, ``to_bytes``...), before it runs; the arguments
    to call it with (an iterable to join, made a list)."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes | int | float):
        return args
    for argument in (*args, *kwargs.values()):
        if is_integer(argument):
            budget.fits(argument, "a width or count")
    name = getattr(method, "__name__", "")
    if not isinstance(owner, str | bytes):
        return args
    if name in ("translate", "maketrans"):
        raise TemplateFailed(f"str.{name} is not available in templates")
    if name == "replace":
        budget.fits(replaced_size(owner, *args, **kwargs), "a replaced string")
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        budget.fits(len(owner) + tabs * tab, "a string")
    elif name == "join" and len(args) == 1:
        items = list(args[0])
        budget.fits(
            measure(items, budget.limits.output_chars) + len(owner) * len(items), "a joined string"
        )
        return (items,)
    return args


def budgeted(name: str, function: Callable[..., Any], check: Check | None) -> Callable[..., Any]:
    """``function`` (a filter or test), spending the budget, with its arguments checked
    first by ``check`` (a filter that can make large text), and its result after."""
    passes = getattr(getattr(function, "jinja_pass_arg", None), "name", None)

    @pass_context  # never folded at compile time, always run under a budget
    def run(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.tick()
        if check is not None:
            value = check(budget, value, *args, **kwargs)
        first = {
            "context": (context,),
            "eval_context": (context.eval_ctx,),
            "environment": (context.environment,),
        }.get(passes or "", ())
        return budget.made(function(*first, value, *args, **kwargs))

    run.__name__ = name
    return run


def _center(budget: Budget, value: Any, width: int = 80) -> Any:
    budget.fits(int(width), "a width")
    return value


def _indent(budget: Budget, value: Any, width: int | str = 4, *_: Any, **__: Any) -> Any:
    text = str(value)
    step = len(width) if isinstance(width, str) else int(width)
    budget.fits(len(text) + (text.count("\n") + 1) * step, "an indented string")
    return value


def _wordwrap(
    budget: Budget,
    value: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    *_: Any,
    **__: Any,
) -> Any:
    text = str(value)
    budget.fits(len(text) * (1 + len(wrapstring or "\n")), "a wrapped string")
    return value


def _format(budget: Budget, value: Any, *_: Any, **__: Any) -> Any:
    check_percent_format(budget, str(value))
    return value


def _replace(budget: Budget, value: Any, old: str, new: str, count: int | None = None) -> Any:
    text = str(value)
    budget.fits(
        replaced_size(text, str(old), str(new), -1 if count is None else count), "a replaced string"
    )
    return value


def _join(budget: Budget, value: Any, d: str = "", *_: Any, **__: Any) -> Any:
    items = list(value)
    budget.fits(
        measure(items, budget.limits.output_chars) + len(str(d)) * len(items), "a joined string"
    )
    return items


def _batch(budget: Budget, value: Any, linecount: int, fill_with: Any = None) -> Any:
    budget.fits(int(linecount), "a batch size")
    return value


def _slice(budget: Budget, value: Any, slices: int, fill_with: Any = None) -> Any:
    budget.fits(int(slices), "a slice count")
    return value


def _tojson(budget: Budget, value: Any, indent: int | None = None) -> Any:
    cap = budget.limits.output_chars
    budget.fits(measure(value, cap, int(indent or 0)), "indented JSON")
    return value


def _pprint(budget: Budget, value: Any) -> Any:
    budget.fits(measure(value, budget.limits.output_chars, 1), "an indented value")
    return value


def _sum(budget: Budget, value: Any, attribute: Any = None, start: Any = 0) -> Any:
    if not isinstance(start, int | float):
        raise TemplateFailed("sum adds numbers only in templates")
    return value


FILTER_CHECKS: Mapping[str, Check] = {
    "center": _center,
    "indent": _indent,
    "wordwrap": _wordwrap,
    "format": _format,
    "replace": _replace,
    "join": _join,
    "batch": _batch,
    "slice": _slice,
    "sum": _sum,
    "tojson": _tojson,
    "pprint": _pprint,
}
"""The filters that can make more than they are given, checked before they run."""
