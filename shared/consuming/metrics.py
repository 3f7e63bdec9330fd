"""The metrics every fenced consumer reports: lag per owned partition and batches rolled
back. Each service names them (``milepost_<service>_...``, spelled out where they are made,
so a search for a name the alert rules read finds it); a service that runs several
groups labels them by group first."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


def lag_gauge(name: str, registry: CollectorRegistry, *, by_group: bool = False) -> Gauge:
    """A ``..._consumer_lag`` gauge, per input partition (and consumer group)."""
    return Gauge(
        name,
        "Records not yet handled, "
        + ("by consumer group and input partition." if by_group else "per input partition."),
        [*(["group"] if by_group else []), "topic", "partition"],
        registry=registry,
    )


def retries_counter(name: str, registry: CollectorRegistry, *, by_group: bool = False) -> Counter:
    """A ``..._batch_retries`` counter, by reason (and consumer group)."""
    return Counter(
        name,
        "Batches rolled back and retried, "
        + ("by consumer group and reason." if by_group else "by reason."),
        [*(["group"] if by_group else []), "reason"],
        registry=registry,
    )
