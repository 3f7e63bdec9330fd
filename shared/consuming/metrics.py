"""The metrics every fenced consumer reports: lag per owned partition, batches rolled back
and how long each step of a batch took. Each service names them
(``milepost_<service>_...``, spelled out where they are made, so a search for a name the
alert rules read finds it); a service that runs several groups labels them by group
first."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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


STEPS = ("queued", "sift", "load", "apply", "wait", "write", "hold", "commit", "publish")
"""The steps of a batch the ``..._step_seconds`` histogram times, in their order: how long
its oldest record waited from its timestamp to the poll that read it, the sift, the load,
the apply, the wait for the previous checkpoint's transaction, then the checkpoint's
effects, its outbox rows and offsets, its commit, and the publishing of its records
(:mod:`shared.consuming.stream`)."""

STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""From a millisecond (a statement's round trip) to seconds (a stage far behind)."""


def steps_histogram(name: str, registry: CollectorRegistry, *, by_group: bool = False) -> Histogram:
    """A ``..._step_seconds`` histogram, by step of a batch (:data:`STEPS`) (and consumer
    group): where a batch's time goes."""
    return Histogram(
        name,
        "Seconds each step of a batch took, "
        + ("by consumer group and step." if by_group else "by step."),
        [*(["group"] if by_group else []), "step"],
        buckets=STEP_BUCKETS,
        registry=registry,
    )
