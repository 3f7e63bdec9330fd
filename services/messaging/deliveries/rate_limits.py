"""Per-channel rate limits as token buckets, on the time the caller gives. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up; starts full."""

    rate: float
    burst: float
    tokens: float
    updated: datetime | None = None

    @classmethod
    def per_second(cls, rate: float) -> TokenBucket:
        burst = max(1.0, rate)
        return cls(rate=rate, burst=burst, tokens=burst)

    def take(self, now: datetime) -> float:
        """Take a token: 0.0 when one was there, otherwise the seconds until one will be
        (nothing is taken then)."""
        if self.updated is not None and now > self.updated:
            elapsed = (now - self.updated).total_seconds()
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        if self.updated is None or now > self.updated:
            self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimits:
    """One bucket per limited channel; channels without a limit always pass."""

    def __init__(self, per_second: Mapping[str, float]) -> None:
        self.buckets = {
            channel: TokenBucket.per_second(rate)
            for channel, rate in per_second.items()
            if rate > 0
        }

    def take(self, channel: str, now: datetime) -> float:
        bucket = self.buckets.get(channel)
        return 0.0 if bucket is None else bucket.take(now)
