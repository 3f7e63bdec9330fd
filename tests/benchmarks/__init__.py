"""Benchmarks on the real broker and database, each figure printed beside its limit.

Run them with ``make bench`` or ``python -m tests.benchmarks [--only NAME] [--help]``.

Adding one: create ``tests/benchmarks/<name>.py`` that defines ``BENCHMARK = Benchmark(...)``;
``__main__`` finds it by itself. Every public module here is a benchmark; helpers shared by
several benchmarks go in a module whose name starts with ``_``. Never name a module
``test_*.py``: pytest must not collect benchmarks, and they assert no timings.

A benchmark's command-line options share one parser with the others (each in its own
``--help`` section), so an option name must be unique across benchmarks.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


class BenchmarkError(Exception):
    """A benchmark could not produce a trustworthy figure (a failed request, a missing
    service...). The runner prints it and exits non-zero."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured rate, optionally beside the limit it is compared with."""

    name: str
    value: float
    unit: str
    limit: float | None = None
    goal: float | None = None
    """The ratio ``value / limit`` this figure should reach, if it has a goal."""

    @property
    def ratio(self) -> float | None:
        if self.limit is None or self.limit <= 0:
            return None
        return self.value / self.limit

    @property
    def meets_goal(self) -> bool | None:
        if self.goal is None or self.ratio is None:
            return None
        return self.ratio >= self.goal

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 1),
            "unit": self.unit,
            "limit": None if self.limit is None else round(self.limit, 1),
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "goal": self.goal,
            "meets_goal": self.meets_goal,
        }


@dataclass(frozen=True, slots=True)
class Report:
    benchmark: str
    title: str
    figures: Sequence[Figure]
    details: Mapping[str, Any] = field(default_factory=dict)
    """Context for reading the figures (sizes, CPU use, latencies), also in the JSON line."""
    notes: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    summary: str
    add_arguments: Callable[[argparse._ArgumentGroup], None]
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, Report]]


def say(message: str) -> None:
    """A status line on stderr; stdout is kept for the results."""
    print(message, file=sys.stderr, flush=True)


@contextmanager
def progress(description: str, total: int, unit: str) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``. A rich bar on a terminal, a line per 10% otherwise (CI logs)."""
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(stderr=True), refresh_per_second=4) as bar:
            task = bar.add_task(description, total=total)
            yield lambda n: bar.advance(task, n)
        return

    done = 0
    next_report = max(1, math.ceil(total / 10))

    def advance(n: int) -> None:
        nonlocal done, next_report
        done += n
        if done >= next_report or done >= total:
            say(f"  {description}: {done:,}/{total:,} {unit} ({100 * done / max(total, 1):.0f}%)")
            next_report = done + max(1, math.ceil(total / 10))

    yield advance


def format_report(report: Report) -> str:
    """The human-readable table: figure, limit, ratio and goal, then details and notes."""
    header = ("figure", "value", "limit", "ratio", "goal", "")
    rows = [header]
    for figure in report.figures:
        verdict = {True: "ok", False: "BELOW GOAL", None: ""}[figure.meets_goal]
        rows.append(
            (
                figure.name,
                f"{figure.value:,.0f} {figure.unit}",
                "-" if figure.limit is None else f"{figure.limit:,.0f} {figure.unit}",
                "-" if figure.ratio is None else f"{figure.ratio:.2f}",
                "-" if figure.goal is None else f">= {figure.goal:.2f}",
                verdict,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["", f"== {report.title}", ""]
    for index, row in enumerate(rows):
        cells = [
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
        if index == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    if report.details:
        lines.append("")
        key_width = max(len(k) for k in report.details)
        lines.extend(f"  {k.ljust(key_width)}  {_detail(v)}" for k, v in report.details.items())
    lines.extend(f"  note: {note}" for note in report.notes)
    return "\n".join(lines)


def report_json(report: Report) -> dict[str, Any]:
    return {
        "benchmark": report.benchmark,
        "figures": [f.as_json() for f in report.figures],
        "details": dict(report.details),
        "notes": list(report.notes),
    }


def _detail(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
