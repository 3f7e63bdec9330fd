from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import FrozenClock, SystemClock


def test_frozen_clock_moves_only_when_told() -> None:
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC)
    clock.advance(timedelta(days=3))
    assert clock.now() == datetime(2026, 1, 4, tzinfo=UTC)


def test_frozen_clock_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FrozenClock(datetime(2026, 1, 1))


def test_system_clock_is_utc() -> None:
    assert SystemClock().now().tzinfo is UTC
