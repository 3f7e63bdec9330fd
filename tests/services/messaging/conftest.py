"""The bus (in memory and Kafka) and database (SQLite and PostgreSQL) the messaging
consumers are tested on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.bus import Bus
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.bus.memory import InMemoryBus
from shared.bus.namespaced import NamespacedBus
from shared.contracts import TOPICS
from shared.db import create_engine, create_session_factory


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    implementation: Bus
    if request.param == "memory":
        implementation = InMemoryBus()
    else:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        prefix = request.getfixturevalue("topic_prefix")
        kafka = KafkaBus(KafkaOptions(bootstrap_servers=bootstrap, linger_ms=1))
        implementation = NamespacedBus(kafka, f"{prefix}.")
    await implementation.start()
    # Two partitions per topic: enough to spread keys, light on the shared broker.
    await implementation.ensure_topics(
        [replace(spec, partitions=2) for spec in TOPICS], replication_factor=1
    )
    yield implementation
    await implementation.close()


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield create_session_factory(engine)
    await engine.dispose()
