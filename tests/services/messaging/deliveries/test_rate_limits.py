"""Token buckets on the caller's time."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.messaging.deliveries.rate_limits import RateLimits, TokenBucket
from tests.services.messaging.deliveries.support import T0


def test_a_bucket_starts_full_then_refills_at_its_rate() -> None:
    bucket = TokenBucket.per_second(2.0)
    assert [bucket.take(T0), bucket.take(T0)] == [0.0, 0.0]
    assert bucket.take(T0) == pytest.approx(0.5)
    assert bucket.take(T0 + timedelta(seconds=0.25)) == pytest.approx(0.25)
    assert bucket.take(T0 + timedelta(seconds=0.5)) == 0.0


def test_a_slow_channel_waits_seconds_between_sends() -> None:
    bucket = TokenBucket.per_second(0.2)  # DingTalk-like: 12 a minute
    assert bucket.take(T0) == 0.0
    assert bucket.take(T0) == pytest.approx(5.0)
    assert bucket.take(T0 + timedelta(seconds=5)) == 0.0


def test_saved_tokens_never_exceed_the_burst() -> None:
    bucket = TokenBucket.per_second(1.0)
    assert bucket.take(T0) == 0.0
    later = T0 + timedelta(hours=1)
    assert bucket.take(later) == 0.0
    assert bucket.take(later) == pytest.approx(1.0)


def test_channels_without_a_limit_always_pass() -> None:
    limits = RateLimits({"slack": 1.0, "email": 0})
    assert [limits.take("email", T0) for _ in range(100)] == [0.0] * 100
    assert limits.take("slack", T0) == 0.0
    assert limits.take("slack", T0) > 0
