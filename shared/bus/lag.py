"""Consumer lag per partition, as a Prometheus gauge: what a member owns and has not handled.

Lag is the partition's end offset minus the member's applied position, read at most once
per interval (an end-offset lookup is a broker round trip).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping

from prometheus_client import Gauge

from shared.bus.protocol import Bus, TopicPartition

LAG_INTERVAL_SECONDS = 5.0


class LagGauge:
    """Sets ``gauge`` (labelled ``*group_labels``, topic, partition) for the owned partitions."""

    def __init__(
        self,
        bus: Bus,
        gauge: Gauge,
        *,
        group_labels: tuple[str, ...] = (),
        interval_seconds: float = LAG_INTERVAL_SECONDS,
    ) -> None:
        self.bus = bus
        self.gauge = gauge
        self.group_labels = group_labels
        self.interval_seconds = interval_seconds
        self.reported_at = float("-inf")

    async def report(
        self, owned: Collection[TopicPartition], applied: Mapping[TopicPartition, int]
    ) -> bool:
        """Update the gauge when the interval has passed; whether it did. A partition with
        nothing applied yet counts from offset 0."""
        if time.monotonic() - self.reported_at < self.interval_seconds or not owned:
            return False
        self.reported_at = time.monotonic()
        ends = await self.bus.end_offsets(sorted(owned, key=lambda tp: (tp.topic, tp.partition)))
        for tp, end in ends.items():
            self.gauge.labels(*self.group_labels, tp.topic, str(tp.partition)).set(
                max(0, end - applied.get(tp, 0))
            )
        return True
