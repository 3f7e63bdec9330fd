"""Fixtures for the real services the suite runs against.

``make test`` provisions Kafka and PostgreSQL and exports ``KAFKA_BOOTSTRAP_SERVERS`` and
``MILEPOST_TEST_DATABASE_URL``. Without them a test that needs one is skipped, except
under CI (``CI=true``), where a missing service fails the test.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import asyncpg
import pytest
import standardwebhooks.webhooks
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.migrations import upgrade_to_head
from shared.bus import Bus
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.bus.memory import InMemoryBus
from shared.bus.namespaced import NamespacedBus
from shared.contracts import TOPICS
from shared.db import create_engine, create_session_factory
from shared.observability.logging import RepeatFilter
from tests.availability import unavailable

COLLECTED_AT = datetime.now(UTC)
"""When the suite was collected. The tests' frozen clocks are read from the wall clock as
their modules are imported, within the collection, and sign webhooks at that time."""


class _CollectionTime(datetime):
    """``datetime`` whose ``now()`` is :data:`COLLECTED_AT`."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _CollectionTime:
        return cls.fromtimestamp(COLLECTED_AT.timestamp(), tz)


@pytest.fixture(autouse=True)
def receivers_on_the_tests_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhook receivers (the Standard Webhooks library) check a message's time against
    :data:`COLLECTED_AT` rather than the wall clock, which a long suite leaves more than the
    library's 5 minutes behind the tests' frozen clocks."""
    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", _CollectionTime)


@pytest.fixture(autouse=True)
def logging_left_as_found() -> Iterator[None]:
    """A command run in-process (Typer's ``CliRunner``) configures logging: the root level,
    and a handler on the stderr of that moment, which the runner closes. Both are undone
    after the test, so later tests' log records are neither lost nor written to a closed
    stream."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in root.handlers[:]:
        if any(isinstance(found, RepeatFilter) for found in handler.filters):
            root.removeHandler(handler)
    root.setLevel(level)


STAGE_BATCH_WAITS = (
    "MILEPOST_ENGINE_BATCH_WAIT_MS",
    "MILEPOST_ATTRIBUTION_BATCH_WAIT_MS",
    "MILEPOST_SCORING_BATCH_WAIT_MS",
    "MILEPOST_MESSAGING_BATCH_WAIT_MS",
)


@pytest.fixture(autouse=True, scope="session")
def stages_apply_at_once() -> Iterator[None]:
    """Stream stages built from settings (and the services the suite starts) apply what a
    poll found without waiting for more: the default wait, 20 ms per short poll, adds up
    to minutes over the suite's steps. ``tests/shared/consuming/test_stream.py`` tests the
    wait itself."""
    with pytest.MonkeyPatch.context() as patch:
        for variable in STAGE_BATCH_WAITS:
            patch.setenv(variable, "0")
        yield


def required_service(variable: str, what: str) -> str:
    """The variable's value; otherwise skip, or fail under CI."""
    value = os.environ.get(variable)
    if not value:
        unavailable(f"{what} is not available: set {variable} (make test provisions it)")
    return value


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return required_service("KAFKA_BOOTSTRAP_SERVERS", "a Kafka broker")


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    return required_service("MILEPOST_TEST_DATABASE_URL", "a PostgreSQL server")


def _asyncpg_dsn(url: str, database: str) -> str:
    return make_url(url).set(drivername="postgresql", database=database).render_as_string(False)


async def _on_server(server_url: str, statement: str) -> None:
    """Run one statement on the server's maintenance database (CREATE/DROP DATABASE)."""
    connection = await asyncpg.connect(_asyncpg_dsn(server_url, "postgres"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server; dropped afterwards."""
    name = f"milepost_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_on_server(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(False)
    finally:
        asyncio.run(_on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A migrated PostgreSQL database shared by the session; tests use unique names in it."""
    for url in fresh_postgres_database(postgres_server_url):
        asyncio.run(_migrate(url))
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'milepost.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both databases Milepost runs on: the embedded SQLite and PostgreSQL (migrated)."""
    if request.param == "sqlite":
        sqlite = f"sqlite+aiosqlite:///{tmp_path / 'milepost.db'}"
        asyncio.run(_migrate(sqlite))
        return sqlite
    postgres: str = request.getfixturevalue("postgres_url")
    return postgres


@pytest.fixture(scope="session")
def topic_prefixes() -> Iterator[list[str]]:
    """The topic prefixes this session hands out; at its end, the Kafka topics under them
    are deleted, so repeated runs on one broker do not pile up partitions."""
    prefixes: list[str] = []
    yield prefixes
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if prefixes and bootstrap:
        asyncio.run(_delete_topics_under(bootstrap, prefixes))


async def _delete_topics_under(bootstrap: str, prefixes: list[str]) -> None:
    kafka = KafkaBus(KafkaOptions(bootstrap_servers=bootstrap))
    try:
        await kafka.delete_topics_under(prefixes)
    finally:
        await kafka.close()


@pytest.fixture
def topic_prefix(topic_prefixes: list[str]) -> str:
    """Topic names unique to one test, so tests on the shared broker never meet (deleted
    at the end of the session)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    topic_prefixes.append(prefix)
    return prefix


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    """The bus a consumer is tested on: in memory, and real Kafka under this test's own
    topic prefix, with every Milepost topic created.

    Three partitions per topic: equal counts keep the engine's inputs co-partitioned, and the
    tests on the shared broker create many topics, each partition costing it memory."""
    implementation: Bus
    if request.param == "memory":
        implementation = InMemoryBus()
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        prefix = request.getfixturevalue("topic_prefix")
        kafka = KafkaBus(KafkaOptions(bootstrap_servers=bootstrap, linger_ms=1))
        implementation = NamespacedBus(kafka, f"{prefix}.")
    await implementation.start()
    specs = [replace(spec, partitions=3) for spec in TOPICS]
    await implementation.ensure_topics(specs, replication_factor=1)
    yield implementation
    await implementation.close()


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on this test's database (SQLite, and the session's PostgreSQL database)."""
    engine = create_engine(database_url)
    yield create_session_factory(engine)
    await engine.dispose()
