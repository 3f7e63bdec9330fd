"""Fixtures for the pure core's tests: a frozen clock at a known midnight."""

from __future__ import annotations

import pytest

from shared.clock import FrozenClock
from tests.services.node_engine.support import T0


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)
