"""What a test does when a server or tool it needs is missing."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(message: str) -> NoReturn:
    """Skip the test; under CI (``CI=true``) fail it instead, so a missing Kafka,
    PostgreSQL or tool never passes as a skip there."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"under CI, {message}")
    pytest.skip(message)  # outside CI only
