"""The pipeline benchmark's report on disk: a markdown page with a PNG of latency over time
(event -> trigger and event -> delivered, each offered rate), a PNG and a table of where
each stage's batches spent their time, and the services' event-loop stalls and collection
pauses over each measured window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shared.consuming.metrics import STEPS
from tests.benchmarks import Figure, Report
from tests.benchmarks._stalls import Stalls
from tests.benchmarks._steps import StageSteps, steps_table

REPORTS = Path(".cache") / "bench"
"""Reports go under this folder of the working directory, one sub-folder per run."""


@dataclass(frozen=True, slots=True)
class Series:
    """One rate's latencies over time: ``(seconds since the measured window began, ms)``."""

    rate: int
    to_trigger: Sequence[tuple[float, float]]
    to_delivery: Sequence[tuple[float, float]]
    ingest: Sequence[float]
    """Request sent -> event on the broker (ms), per delivered event."""


def report_folder(run_id: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return REPORTS / f"pipeline-{stamp}-{run_id}"


def write_report(
    folder: Path,
    report: Report,
    series: Sequence[Series],
    stalls: Mapping[int, Mapping[str, Stalls]],
    steps: Mapping[int, Mapping[str, Sequence[StageSteps]]],
) -> Path:
    """``report.md``, ``latency.png`` and ``steps.png`` in ``folder``; returns the markdown
    file."""
    folder.mkdir(parents=True, exist_ok=True)
    chart = folder / "latency.png"
    _plot(chart, series)
    stages = [
        (f"{rate:,} ev/s", stage)
        for rate, by_process in steps.items()
        for found in by_process.values()
        for stage in found
    ]
    steps_chart = folder / "steps.png"
    _plot_steps(steps_chart, stages)
    lines = [f"# {report.title}", "", f"![latency over time]({chart.name})", ""]
    lines += _figures_table(report.figures)
    lines += ["", "## Where each stage's batches spent their time (mean ms per batch)", ""]
    lines += [f"![mean ms per batch by step]({steps_chart.name})", ""]
    lines += steps_table(stages)
    lines += ["", "## Event-loop stalls and collection pauses (each measured window)", ""]
    lines += ["| rate | process | figure | value |", "|---|---|---|---|"]
    for rate, by_process in stalls.items():
        for process, found in by_process.items():
            lines += [
                f"| {rate:,} ev/s | {process} | {name.partition(': ')[2]} | {value} |"
                for name, value in found.summary(process).items()
            ]
    lines += ["", "## Details", ""]
    lines += [f"- {key}: {value}" for key, value in report.details.items()]
    lines += ["", "## Notes", ""] + [f"- {note}" for note in report.notes]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _figures_table(figures: Sequence[Figure]) -> list[str]:
    rows = ["| figure | value | limit | ratio |", "|---|---|---|---|"]
    for figure in figures:
        limit = "-" if figure.limit is None else f"{figure.limit:,.0f} {figure.unit}"
        ratio = "-" if figure.ratio is None else f"{figure.ratio:.2f}"
        rows.append(f"| {figure.name} | {figure.value:,.0f} {figure.unit} | {limit} | {ratio} |")
    return rows


def _plot_steps(path: Path, stages: Sequence[tuple[str, StageSteps]]) -> None:
    """One horizontal bar per ``(rate, stage)``: its steps' mean ms per batch, stacked in
    the order a batch takes them."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, plot = pyplot.subplots(figsize=(11, 1.0 + 0.45 * max(1, len(stages))))
    names = [f"{label} {stage.stage}" for label, stage in stages]
    left = [0.0] * len(stages)
    for step in STEPS:
        widths = [stage.mean_ms(step) for _, stage in stages]
        plot.barh(names, widths, left=left, label=step)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    plot.invert_yaxis()
    plot.set_xlabel("mean ms per batch")
    plot.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def _plot(path: Path, series: Sequence[Series]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(
        len(series) or 1, 1, figsize=(10, 3.5 * max(1, len(series))), squeeze=False
    )
    for row, one in zip(axes, series, strict=False):
        plot = row[0]
        for points, label, marker in (
            (one.to_delivery, "event -> delivered", "."),
            (one.to_trigger, "event -> trigger", "x"),
        ):
            plot.scatter(
                [x for x, _ in points], [y for _, y in points], s=4, marker=marker, label=label
            )
        plot.set_title(f"{one.rate:,} events/s offered")
        plot.set_xlabel("seconds into the measured window (by send time)")
        plot.set_ylabel("latency (ms)")
        plot.set_yscale("log")
        plot.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
