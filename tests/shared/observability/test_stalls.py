"""A blocked event loop and each garbage collection show up in the process's metrics."""

from __future__ import annotations

import asyncio
import gc
import time

from prometheus_client import CollectorRegistry

from shared.observability.stalls import GEN0_THRESHOLD, tuned_gc, watch_stalls


async def test_a_blocked_loop_is_recorded_as_a_stall_and_collections_as_pauses() -> None:
    registry = CollectorRegistry()
    watching = asyncio.create_task(watch_stalls(registry))
    await asyncio.sleep(0.05)
    time.sleep(0.12)  # noqa: ASYNC251 - blocks the loop, as a long collection would
    gc.collect()
    await asyncio.sleep(0.05)
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    under_100ms = sample("milepost_event_loop_lag_seconds_bucket", le="0.1")
    assert sample("milepost_event_loop_lag_seconds_count") > under_100ms
    assert sample("milepost_gc_pause_seconds_count", generation="2") >= 1
    assert not any(getattr(c, "__qualname__", "").startswith("watch_stalls") for c in gc.callbacks)


def test_tuned_gc_freezes_what_was_allocated_and_raises_the_young_threshold_within() -> None:
    saved = gc.get_threshold()
    with tuned_gc():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (GEN0_THRESHOLD, saved[1], saved[2])
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == saved
