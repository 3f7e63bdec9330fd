"""Event-loop stalls and garbage-collection pauses of a running service, as metrics.

A stalled loop delays every consumer, timer and request of the process at once, whatever
stalled it (a collection of a large heap, a long pure computation between two awaits).
:func:`watch_stalls` samples the loop's lag (how late a short sleep wakes up) into
``milepost_event_loop_lag_seconds`` and times each collection into
``milepost_gc_pause_seconds{generation}``. A service serves within :func:`tuned_gc`, so the
collector stops rescanning what start-up allocated.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

SAMPLE_INTERVAL_S = 0.01
STALL_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    1.0,
    2.0,
    5.0,
)
GEN0_THRESHOLD = 50_000
"""Allocations between young collections (CPython's default is 700): a batch of records
allocates and frees far more than 700 short-lived objects, which the default promotes to
older generations, whose collections scan the whole heap of cached states."""


class StallMetrics:
    """The loop-lag and collection-pause histograms of one process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.loop_lag = Histogram(
            "milepost_event_loop_lag_seconds",
            "How late a sleep of the event loop woke up, sampled every 10 ms (a stall).",
            buckets=STALL_BUCKETS,
            registry=registry,
        )
        self.gc_pause = Histogram(
            "milepost_gc_pause_seconds",
            "Duration of each garbage collection, by generation.",
            ["generation"],
            buckets=STALL_BUCKETS,
            registry=registry,
        )


async def watch_stalls(registry: CollectorRegistry) -> None:
    """Record loop lag and collection pauses into ``registry`` until cancelled."""
    metrics = StallMetrics(registry)
    started: list[float] = []

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            pause = time.perf_counter() - started.pop()
            metrics.gc_pause.labels(str(info["generation"])).observe(pause)

    gc.callbacks.append(on_collection)
    try:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            metrics.loop_lag.observe(max(0.0, time.perf_counter() - before - SAMPLE_INTERVAL_S))
    finally:
        gc.callbacks.remove(on_collection)


@contextmanager
def tuned_gc() -> Iterator[None]:
    """Within: everything allocated before (modules, settings, clients) is out of the
    collector's reach, and the young generation is collected less often. Restored after."""
    saved = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, saved[1], saved[2])
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()
