"""The limits every template render runs within, and the budget that holds one render to
them while it runs. Pure but for the monotonic clock a budget reads.

Every check raises :class:`~services.messaging.errors.TemplateLimitExceeded` naming the
limit, before the work it guards is done: a width, a repeat count or an exponent is
refused before the string or number is built, not measured afterwards.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, ItemsView, KeysView, Mapping, ValuesView
from dataclasses import dataclass
from string import Formatter
from typing import TypeVar

from services.messaging.errors import TemplateFailed, TemplateLimitExceeded

T = TypeVar("T")

_CONTAINERS = (list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True, slots=True)
class TemplateLimits:
    """The limits of one render (a subject, a body, a task title), from
    ``MILEPOST_MESSAGING_TEMPLATE_*``; the defaults are the settings' defaults."""

    time_seconds: float = 0.5
    """CPU time a render's thread may spend (loops, calls, operators and output check it as
    they run); time spent waiting for a core or the interpreter lock does not count."""
    output_chars: int = 100_000
    """Characters a render may write (a macro's or ``{% set %}`` block's text counts as
    written too), and the size of any string or list it makes, or width it asks for."""
    integer_bits: int = 256
    """Bits of any integer arithmetic makes (``10**100000`` is refused, not computed)."""
    range_items: int = 10_000
    """Items of one ``range()``."""
    depth: int = 30
    """Calls nested in calls: macros calling macros, ``caller()``, recursive loops."""


class Budget:
    """One render's spending against its :class:`TemplateLimits`.

    Time is the CPU time of the rendering thread, so a busy machine slows a render without
    failing it. Reading that clock is a system call, so each step reads the cheap wall
    clock and the thread's clock only once the wall deadline passes: a thread never spends
    more CPU time than wall time elapses, so the wall deadline is never late; when the CPU
    time is still under the limit the wall deadline moves by what remains."""

    __slots__ = ("cpu_clock", "cpu_deadline", "deadline", "depth", "limits", "monotonic", "written")

    def __init__(
        self,
        limits: TemplateLimits,
        monotonic: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.limits = limits
        self.monotonic = monotonic
        self.cpu_clock = cpu_clock
        self.deadline = monotonic() + limits.time_seconds
        self.cpu_deadline = cpu_clock() + limits.time_seconds
        self.written = 0
        self.depth = 0

    def tick(self) -> None:
        """A step of work (a loop iteration, a call, an operator, a piece of output)."""
        now = self.monotonic()
        if now <= self.deadline:
            return
        remaining = self.cpu_deadline - self.cpu_clock()
        if remaining < 0:
            raise TemplateLimitExceeded("time", f"rendering ran over {self.limits.time_seconds} s")
        self.deadline = now + remaining

    def write(self, text: str) -> str:
        """``text``, counted against the output limit."""
        self.tick()
        self.written += len(text)
        if self.written > self.limits.output_chars:
            raise TemplateLimitExceeded(
                "output", f"more than {self.limits.output_chars} characters written"
            )
        return text

    def fits(self, size: int, what: str) -> None:
        """Refuse ``what`` of ``size`` characters or items, before it is made."""
        if size > self.limits.output_chars:
            raise TemplateLimitExceeded(
                "output", f"{what} of {size}, over {self.limits.output_chars}"
            )

    def bits(self, bits: int) -> None:
        """Refuse an integer of ``bits`` bits, before it is computed."""
        if bits > self.limits.integer_bits:
            raise TemplateLimitExceeded(
                "number", f"an integer of about {bits} bits, over {self.limits.integer_bits}"
            )

    def made(self, value: T) -> T:
        """``value``, refused if it is an integer, string or container over the limits."""
        if isinstance(value, int):
            self.bits(value.bit_length())
        elif isinstance(value, str | bytes):
            self.fits(len(value), "a string")
        elif isinstance(value, (Mapping, *_CONTAINERS)):
            self.fits(measure(value, self.limits.output_chars), "a value")
        return value

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.depth:
            raise TemplateLimitExceeded(
                "depth", f"calls nested more than {self.limits.depth} deep (a recursive macro?)"
            )

    def leave(self) -> None:
        self.depth -= 1


def measure(value: object, cap: int, indent: int = 0) -> int:
    """The size of ``value`` as text: a string's length, one per item of a container
    (again for each time a shared item recurs), plus ``indent`` per level of nesting per
    item when it is written indented; one for anything else. Stops counting once past
    ``cap``, so it costs at most about ``cap`` steps."""
    total, pending = 1, [(value, 1)]
    while pending and total <= cap:
        item, level = pending.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, Mapping):
            total += (2 + indent * level) * len(item)
            pending.extend((inner, level + 1) for inner in (*item.keys(), *item.values()))
        elif isinstance(item, _CONTAINERS):
            total += (1 + indent * level) * len(item)
            pending.extend((inner, level + 1) for inner in item)
    return total


def is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_percent_format(budget: Budget, text: str) -> None:
    """Refuse a ``%`` format whose width or precision is over the output limit, or is
    taken from the arguments (``*``)."""
    for width, precision in _PERCENT_FIELD.findall(text):
        for number in (width, precision):
            if number == "*":
                raise TemplateFailed("'*' widths are not available in templates")
            if number:
                budget.fits(int(number), "a width")


def check_format_fields(budget: Budget, text: str) -> None:
    """Refuse a ``str.format`` template whose widths are over the output limit or come
    from replacement fields inside a field's format spec."""
    for _literal, _field, spec, _conversion in Formatter().parse(text):
        if not spec:
            continue
        if "{" in spec:
            raise TemplateFailed("a format spec may not hold a replacement field in templates")
        for number in _DIGITS.findall(spec):
            budget.fits(int(number), "a width")


def replaced_size(text: str | bytes, old: str | bytes, new: str | bytes, count: int = -1) -> int:
    """The length of ``text.replace(old, new, count)``, without building it."""
    found = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if is_integer(count) and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))
