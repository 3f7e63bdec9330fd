"""The fault suite at a small scale, in ``make test`` (``make chaos`` runs it in full):
each scenario's triggers and deliveries against an undisturbed run of the same workload,
nothing lost, nothing duplicated."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.outputs import Outputs
from tests.chaos.runner import run_scenario, table
from tests.chaos.scenarios import SCALES, SCENARIOS, UNDISTURBED, Scenario
from tests.chaos.system import PrivateServices, Servers

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(300)]
SEED = 15
SCALE = SCALES["small"]


@pytest.fixture(scope="module")
def servers(kafka_bootstrap: str, postgres_server_url: str) -> Servers:
    return Servers(kafka_bootstrap, postgres_server_url)


@pytest.fixture(scope="module")
def undisturbed(servers: Servers) -> Outputs:
    row, outputs = asyncio.run(run_scenario(UNDISTURBED, SCALE, SEED, servers))
    assert row.passed, table([row])
    return outputs


def _passes(scenario: Scenario, servers: Servers, undisturbed: Outputs, **private: object) -> None:
    row, _ = asyncio.run(
        run_scenario(scenario, SCALE, SEED, servers, undisturbed=undisturbed, **private)  # type: ignore[arg-type]
    )
    assert row.passed, table([row])


@pytest.mark.parametrize("name", ["sigkill", "webhook"])
def test_nothing_is_lost_or_duplicated(name: str, servers: Servers, undisturbed: Outputs) -> None:
    _passes(SCENARIOS[name], servers, undisturbed)


@pytest.fixture
def private(tmp_path: Path) -> Iterator[PrivateServices]:
    services = PrivateServices(tmp_path / "services", random.Random(SEED))
    try:
        asyncio.run(services.up())
        yield services
    finally:
        asyncio.run(services.down())


def test_a_broker_restart_loses_and_duplicates_nothing(
    private: PrivateServices, undisturbed: Outputs
) -> None:
    _passes(SCENARIOS["broker"], private.servers, undisturbed, private=private)
