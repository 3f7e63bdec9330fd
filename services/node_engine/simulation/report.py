"""The simulation report: places over time, triggers, time to complete, condition failures,
and the difference from the current published version. Pure; as text tables or JSON."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.node_engine.paths.compiled import GrowthPath
from services.node_engine.simulation.replay import Position, Snapshot, Tally, Totals
from shared.durations import format_duration
from shared.event_log import Skipped

MAX_SNAPSHOT_COLUMNS = 10
"""Text tables show at most this many snapshots, evenly spaced, always the last; JSON has all."""


@dataclass(frozen=True, slots=True)
class NodeTime:
    stage: str
    node: str
    completed: int
    median_days: float
    p90_days: float


@dataclass(frozen=True, slots=True)
class Change:
    """One figure in the simulated version beside the current one."""

    stage: str
    node: str | None
    kind: str | None
    """The trigger kind; None for accounts at the place at the end."""
    simulated: int
    current: int

    @property
    def change(self) -> int:
        return self.simulated - self.current


@dataclass(frozen=True, slots=True)
class Diff:
    against_version: int
    same_content: bool
    places: tuple[Change, ...]
    triggers: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class Report:
    path: GrowthPath
    totals: Totals
    skipped: tuple[Skipped, ...]
    skipped_count: int
    enrolled: int
    places: tuple[Position, ...]
    """Every place in path order: the table rows of the snapshots."""
    snapshots: tuple[Snapshot, ...]
    triggers: Mapping[tuple[str, str, str | None], int]
    roles: Mapping[tuple[str, str], int]
    node_times: tuple[NodeTime, ...]
    failures: tuple[tuple[str, str | None, str, int], ...]
    diff: Diff | None

    def triggers_by_node(self) -> list[tuple[tuple[str, str, str | None], int]]:
        """((kind, stage, node), count) in path order, then by kind."""
        rank = _ranks(self.path)
        return sorted(
            self.triggers.items(),
            key=lambda item: (rank.get((item[0][1], item[0][2]), len(rank)), item[0][0]),
        )

    @property
    def triggers_by_kind(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for (kind, _stage, _node), count in self.triggers.items():
            counts[kind] += count
        return dict(sorted(counts.items()))


def build_report(
    totals: Totals,
    simulated: Tally,
    current: Tally | None = None,
    *,
    same_content: bool = False,
    skipped: Sequence[Skipped] = (),
    skipped_count: int = 0,
) -> Report:
    """The report of ``simulated``, compared with ``current`` when given."""
    path = simulated.path
    occupied = {place for snapshot in simulated.snapshots for place in snapshot.positions}
    node_times = tuple(
        NodeTime(node.stage, node.id, len(days), _median(days), _p90(days))
        for node in _nodes(path)
        if (days := simulated.completion_days.get(node.id))
    )
    return Report(
        path=path,
        totals=totals,
        skipped=tuple(skipped),
        skipped_count=skipped_count,
        enrolled=simulated.enrolled,
        places=_in_path_order(path, occupied),
        snapshots=simulated.snapshots,
        triggers=simulated.triggers,
        roles=simulated.roles,
        node_times=node_times,
        failures=tuple(
            (stage, node, reason, count)
            for (stage, node, reason), count in sorted(
                simulated.failures.items(), key=lambda item: (-item[1], item[0][2])
            )
        ),
        diff=None if current is None else _diff(simulated, current, same_content),
    )


def _diff(simulated: Tally, current: Tally, same_content: bool) -> Diff:
    def last(tally: Tally) -> Mapping[Position, int]:
        return tally.snapshots[-1].positions if tally.snapshots else {}

    ends = last(simulated), last(current)
    places = _in_path_order(simulated.path, set(ends[0]) | set(ends[1]), also=current.path)
    keys = set(simulated.triggers) | set(current.triggers)
    order = {place: i for i, place in enumerate(places)}
    triggers = sorted(keys, key=lambda k: (order.get((k[1], k[2]), len(order)), k[1], k[0]))
    return Diff(
        against_version=current.path.version,
        same_content=same_content,
        places=tuple(
            Change(stage, node, None, ends[0].get((stage, node), 0), ends[1].get((stage, node), 0))
            for stage, node in places
        ),
        triggers=tuple(
            Change(
                stage,
                node,
                kind,
                simulated.triggers.get((kind, stage, node), 0),
                current.triggers.get((kind, stage, node), 0),
            )
            for kind, stage, node in triggers
        ),
    )


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON data (every snapshot)."""
    return {
        "path": {"id": report.path.id, "version": report.path.version, "name": report.path.name},
        "events": _events_json(report),
        "accounts": {"enrolled": report.enrolled},
        "snapshots": _snapshots_json(report),
        "triggers": _triggers_json(report),
        "time_to_complete": [
            {
                "stage": t.stage,
                "node": t.node,
                "completed": t.completed,
                "median_days": t.median_days,
                "p90_days": t.p90_days,
            }
            for t in report.node_times
        ],
        "condition_failures": [
            {"stage": stage, "node": node, "reason": reason, "count": count}
            for stage, node, reason, count in report.failures
        ],
        "diff": None if report.diff is None else _diff_json(report.diff),
    }


def _events_json(report: Report) -> dict[str, Any]:
    totals = report.totals
    return {
        "replayed": totals.events,
        "unattributed": totals.unattributed,
        "skipped": report.skipped_count,
        "skipped_examples": [{"where": s.where, "reason": s.reason} for s in report.skipped],
        "from": _iso(totals.first_at),
        "to": _iso(totals.end_at),
    }


def _snapshots_json(report: Report) -> dict[str, Any]:
    return {
        "every": format_duration(timedelta(seconds=report.totals.every_seconds)),
        "items": [
            {
                "at": _iso(snapshot.at),
                "places": [
                    {"stage": stage, "node": node, "accounts": snapshot.positions[(stage, node)]}
                    for stage, node in report.places
                    if snapshot.positions.get((stage, node))
                ],
            }
            for snapshot in report.snapshots
        ],
    }


def _triggers_json(report: Report) -> dict[str, Any]:
    return {
        "by_kind": report.triggers_by_kind,
        "by_role": [
            {"kind": kind, "role": role, "count": count}
            for (kind, role), count in sorted(report.roles.items())
        ],
        "by_node": [
            {"kind": kind, "stage": stage, "node": node, "count": count}
            for (kind, stage, node), count in report.triggers_by_node()
        ],
    }


def _diff_json(diff: Diff) -> dict[str, Any]:
    return {
        "against_version": diff.against_version,
        "same_content": diff.same_content,
        "places": [_change(c) for c in diff.places],
        "triggers": [_change(c) for c in diff.triggers],
    }


def report_text(report: Report) -> str:
    """The report as readable tables."""
    lines = _summary_text(report)
    lines += _places_text(report)
    lines += _triggers_text(report)
    lines += ["", "Time to complete (days in node)"]
    lines += _table(
        ["stage", "node", "completed", "median", "p90"],
        [
            [t.stage, t.node, str(t.completed), f"{t.median_days:g}", f"{t.p90_days:g}"]
            for t in report.node_times
        ],
    )
    lines += ["", "Condition failures"]
    lines += _table(
        ["stage", "node", "count", "reason"],
        [[stage, node or "-", str(n), reason] for stage, node, reason, n in report.failures],
    )
    lines += _diff_text(report.diff)
    return "\n".join(lines) + "\n"


def _summary_text(report: Report) -> list[str]:
    path, totals = report.path, report.totals
    lines = [
        f"Simulation of {path.id} v{path.version} ({path.name})",
        f"  events replayed: {totals.events} from {_iso(totals.first_at) or '-'} "
        f"to {_iso(totals.end_at) or '-'}; not attributed to an account: {totals.unattributed}; "
        f"skipped: {report.skipped_count}",
        f"  accounts enrolled: {report.enrolled}",
    ]
    return lines + [f"  skipped {s.where}: {s.reason}" for s in report.skipped[:5]]


def _places_text(report: Report) -> list[str]:
    shown = _spaced(report.snapshots, MAX_SNAPSHOT_COLUMNS)
    every = format_duration(timedelta(seconds=report.totals.every_seconds))
    note = (
        ""
        if len(shown) == len(report.snapshots)
        else f", {len(shown)} of {len(report.snapshots)} shown"
    )
    return [
        "",
        f"Accounts per stage and node (snapshots every {every}{note})",
        *_table(
            ["stage", "node", *(_short(s.at) for s in shown)],
            [
                [stage, node or "-", *(str(s.positions.get((stage, node), 0)) for s in shown)]
                for stage, node in report.places
            ],
        ),
    ]


def _triggers_text(report: Report) -> list[str]:
    lines = ["", "Triggers by kind"]
    lines += _table(["kind", "count"], [[k, str(n)] for k, n in report.triggers_by_kind.items()])
    lines += ["", "Triggers by kind and role"]
    lines += _table(
        ["kind", "role", "count"],
        [[kind, role, str(n)] for (kind, role), n in sorted(report.roles.items())],
    )
    lines += ["", "Triggers by node"]
    lines += _table(
        ["stage", "node", "kind", "count"],
        [
            [stage, node or "-", kind, str(n)]
            for (kind, stage, node), n in report.triggers_by_node()
        ],
    )
    return lines


def _diff_text(diff: Diff | None) -> list[str]:
    if diff is None:
        return ["", "No current version of this path in the workspace to compare with."]
    same = " (the same content)" if diff.same_content else ""
    lines = ["", f"Compared with the current version v{diff.against_version}{same}"]
    lines += ["Accounts at the end"]
    lines += _table(
        ["stage", "node", "simulated", "current", "change"],
        [
            [c.stage, c.node or "-", str(c.simulated), str(c.current), f"{c.change:+d}"]
            for c in diff.places
        ],
    )
    lines += ["Triggers"]
    lines += _table(
        ["stage", "node", "kind", "simulated", "current", "change"],
        [
            [
                c.stage,
                c.node or "-",
                c.kind or "-",
                str(c.simulated),
                str(c.current),
                f"{c.change:+d}",
            ]
            for c in diff.triggers
            if c.change
        ],
    )
    return lines


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    if not rows:
        return ["  (none)"]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return (
            "  "
            + "  ".join(
                cell.rjust(width)
                if cell.lstrip("+-").replace(".", "").isdigit()
                else cell.ljust(width)
                for cell, width in zip(cells, widths, strict=True)
            ).rstrip()
        )

    return [line(headers), "  " + "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _nodes(path: GrowthPath) -> Iterable[Any]:
    return (node for stage in path.stages for node in stage.nodes)


def _ranks(path: GrowthPath, also: GrowthPath | None = None) -> dict[Position, int]:
    """The order of every place of ``path`` (then ``also``): a stage itself, then its nodes."""
    order: list[Position] = []
    for source in (path, also) if also else (path,):
        for stage in source.stages:
            order.append((stage.id, None))
            order += [(stage.id, node.id) for node in stage.nodes]
    return {place: i for i, place in enumerate(dict.fromkeys(order))}


def _in_path_order(
    path: GrowthPath, occupied: set[Position], *, also: GrowthPath | None = None
) -> tuple[Position, ...]:
    """Every node of ``path`` (and of ``also``), stages without nodes, and any other occupied
    place, in path order."""
    ranked = _ranks(path, also)
    wanted = {p for p in ranked if p[1] is not None or not _has_nodes(path, also, p[0])}
    places = wanted | occupied
    return tuple(sorted(places, key=lambda p: (ranked.get(p, len(ranked)), p[0], p[1] or "")))


def _has_nodes(path: GrowthPath, also: GrowthPath | None, stage_id: str) -> bool:
    return any(
        bool(source.stages_by_id[stage_id].nodes)
        for source in (path, also)
        if source is not None and stage_id in source.stages_by_id
    )


def _median(days: Sequence[float]) -> float:
    return round(statistics.median(days), 2)


def _p90(days: Sequence[float]) -> float:
    """The nearest-rank 90th percentile."""
    ordered = sorted(days)
    return round(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)], 2)


def _spaced(snapshots: Sequence[Snapshot], limit: int) -> list[Snapshot]:
    if len(snapshots) <= limit:
        return list(snapshots)
    step = (len(snapshots) - 1) / (limit - 1)
    return [snapshots[round(i * step)] for i in range(limit)]


def _change(change: Change) -> dict[str, Any]:
    return {
        "stage": change.stage,
        "node": change.node,
        "kind": change.kind,
        "simulated": change.simulated,
        "current": change.current,
        "change": change.change,
    }


def _iso(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _short(seconds: int) -> str:
    at = datetime.fromtimestamp(seconds, UTC)
    return at.strftime("%m-%d") if at.hour == at.minute == 0 else at.strftime("%m-%d %H:%M")
