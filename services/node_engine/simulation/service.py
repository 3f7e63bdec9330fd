"""Run a simulation: replay an event log through a file's version and, to compare, through
the current published version of the same path. No side effects beyond reading."""

from __future__ import annotations

from collections.abc import Callable

from services.node_engine.paths.compiled import GrowthPath
from services.node_engine.simulation.replay import Observer, Replay
from services.node_engine.simulation.report import Report, build_report
from shared.event_log import EventLog

PROGRESS_EVERY = 1000


def simulate(
    path: GrowthPath,
    events: EventLog,
    *,
    current: GrowthPath | None = None,
    same_content: bool = False,
    every_seconds: int = 86400,
    horizon_seconds: int = 0,
    progress: Callable[[int], None] | None = None,
    observer: Observer | None = None,
) -> Report:
    """Replay ``events`` through ``path`` (and ``current``) and report; ``progress`` is
    told how many more events were replayed, every :data:`PROGRESS_EVERY`; ``observer``
    every event and every trigger of ``path`` (an outreach simulation)."""
    paths = [path] if current is None else [path, current]
    replay = Replay(paths, every_seconds=every_seconds, observer=observer)
    done = 0
    for event in events:
        replay.add(event)
        done += 1
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
    if progress is not None and done % PROGRESS_EVERY:
        progress(done % PROGRESS_EVERY)
    totals, tallies = replay.finish(horizon_seconds=horizon_seconds)
    return build_report(
        totals,
        tallies[0],
        tallies[1] if current is not None else None,
        same_content=same_content,
        skipped=events.skipped,
        skipped_count=events.skipped_count,
    )
