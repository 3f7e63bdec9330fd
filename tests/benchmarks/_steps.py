"""Where each stage's batches spent their time over one benchmark phase, from the step
histograms of the stream runtime (:func:`shared.consuming.metrics.steps_histogram`) in two
readings of a service's ``/metrics`` (:func:`tests.benchmarks._stalls.read_histograms`).

A stage is a consumer group: the service in the histogram's name (``engine``,
``attribution``, ``scoring``), or the ``group`` label where a service runs several
(messaging). A step's mean is its time over the batches applied (exact: the histogram's
sum); a p99 is the upper bound of its bucket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.consuming.metrics import STEPS
from tests.benchmarks._stalls import STEP_FAMILY, Histogram, histogram_between, ms


@dataclass(frozen=True, slots=True)
class StageSteps:
    """One stage's steps over a phase, in :data:`~shared.consuming.metrics.STEPS` order."""

    stage: str
    steps: Mapping[str, Histogram]

    @property
    def batches(self) -> float:
        """Batches applied (the ``apply`` step's count)."""
        return self.steps["apply"].count if "apply" in self.steps else 0.0

    def mean_ms(self, step: str) -> float:
        """The step's time over the phase per batch applied: a step some batches skip (a
        batch with nothing to write has no checkpoint) counts 0 for them, so the steps'
        means add up to a batch's mean time."""
        found = self.steps.get(step)
        return 1000 * found.total / self.batches if found is not None and self.batches else 0.0

    def summary(self, label: str, *, queued: bool = True) -> dict[str, str]:
        """One line: each step's mean ms per batch and the p99 (ms) of the step where it
        ran, and how many batches; without ``queued`` when the records were a backlog
        published before the stage started (their wait is the backlog's age)."""
        parts = [
            f"{step} {self.mean_ms(step):,.1f} / {ms(self.steps[step].quantile_bound(0.99))}"
            for step in STEPS
            if step in self.steps and (queued or step != "queued")
        ]
        key = (
            f"{label}, {self.stage}: per batch, mean / p99 ms by step ({self.batches:,.0f} batches)"
        )
        return {key: ", ".join(parts)}


def steps_between(
    before: Mapping[str, Histogram], after: Mapping[str, Histogram]
) -> list[StageSteps]:
    """Each stage that applied a batch between two readings, with its steps."""
    stages: dict[str, dict[str, Histogram]] = {}
    for key in after:
        family, group, step = _parts(key)
        if family is None:
            continue
        stage = group or family
        stages.setdefault(stage, {})[step] = histogram_between(before, after, key)
    found = [
        StageSteps(stage, {step: steps[step] for step in STEPS if step in steps})
        for stage, steps in sorted(stages.items())
    ]
    return [stage for stage in found if stage.batches]


def _parts(key: str) -> tuple[str | None, str, str]:
    """``(service, group, step)`` of a step histogram's key; service ``None`` for another."""
    name, _, rest = key.partition(":")
    matched = STEP_FAMILY.fullmatch(name)
    if matched is None:
        return None, "", ""
    group, _, step = rest.partition(":")
    return matched.group(1), group, step


def steps_table(rows: Sequence[tuple[str, StageSteps]]) -> list[str]:
    """A markdown table: per ``(rate or phase, stage)``, each step's mean ms per batch."""
    lines = [
        "| rate | stage | batches | " + " | ".join(STEPS) + " |",
        "|---|---|---|" + "---|" * len(STEPS),
    ]
    for label, stage in rows:
        means = " | ".join(f"{stage.mean_ms(step):,.1f}" for step in STEPS)
        lines.append(f"| {label} | {stage.stage} | {stage.batches:,.0f} | {means} |")
    return lines
