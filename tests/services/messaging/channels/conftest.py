from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.messaging.channels.http import HttpClient, http_client
from tests.services.messaging.channels.support import OPEN_GUARD
from tests.services.messaging.http_sink import Sink, running_sink


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with running_sink() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    """Patient enough that a loaded machine never turns a local answer into a timeout
    (tests of the timeout make a client of their own)."""
    async with http_client(timeout_seconds=10.0, guard=OPEN_GUARD) as shared:
        yield shared
