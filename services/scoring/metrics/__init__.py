"""Per-account metrics kept incrementally in day buckets, and their storage encoding."""

from services.scoring.metrics.encoding import decode, encode
from services.scoring.metrics.store import (
    DAY,
    HORIZON_DAYS,
    MAX_USERS_PER_DAY,
    Baseline,
    MetricStore,
    baseline,
    fold,
    prune,
    value,
    value_of,
)

__all__ = [
    "DAY",
    "HORIZON_DAYS",
    "MAX_USERS_PER_DAY",
    "Baseline",
    "MetricStore",
    "baseline",
    "decode",
    "encode",
    "fold",
    "prune",
    "value",
    "value_of",
]
