"""Metric-definition versions: publish (a digest already current makes no version), list,
show, and the catalog the consumer counts with."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.catalog.service import (
    REFERENCE_METRICS,
    list_versions,
    load_catalog,
    publish,
    reference_definitions,
    show,
)
from services.scoring.errors import DefinitionsNotFound, DefinitionsUnchanged
from shared.clock import FrozenClock
from shared.db import create_engine, create_session_factory
from shared.definitions import DefinitionError

SOURCE = REFERENCE_METRICS.read_text()
CLOCK = FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_engine(database_url)
    async with create_session_factory(engine)() as opened:
        yield opened
    await engine.dispose()


@pytest.fixture
def workspace() -> str:
    return f"ws_{uuid.uuid4().hex[:12]}"


async def test_each_new_content_is_the_next_version(session: AsyncSession, workspace: str) -> None:
    first = await publish(session, workspace, "metrics.yaml", SOURCE, clock=CLOCK)
    with pytest.raises(DefinitionsUnchanged):
        await publish(session, workspace, "again.yaml", SOURCE, clock=CLOCK)
    changed = SOURCE.replace("name: GMV", "name: Gross merchandise value")
    second = await publish(session, workspace, "metrics.yaml", changed, clock=CLOCK)
    await session.commit()

    assert (first.version, second.version) == (1, 2)
    assert first.digest != second.digest
    assert second.north_star == "orders"
    assert second.metric_count == len(reference_definitions().definitions.metrics)
    page, cursor = await list_versions(session, workspace, limit=1)
    assert [(v.version, v.current) for v in page] == [(2, True)]
    rest, end = await list_versions(session, workspace, cursor=cursor)
    assert ([(v.version, v.current) for v in rest], end) == ([(1, False)], None)
    current = await show(session, workspace)
    assert current.info.version == 2
    assert current.definitions.get("gmv").name == "Gross merchandise value"
    assert (await show(session, workspace, 1)).source == SOURCE
    catalog = await load_catalog(session)
    assert catalog[workspace].version == 2
    assert catalog[workspace].definitions.digest == second.digest


async def test_an_invalid_file_is_refused_and_nothing_is_published(
    session: AsyncSession, workspace: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        await publish(session, workspace, "bad.yaml", "metrics: []\n", clock=CLOCK)
    assert str(caught.value).startswith("bad.yaml:1:")
    with pytest.raises(DefinitionsNotFound):
        await show(session, workspace)


async def test_a_workspace_without_definitions_counts_with_the_reference_ones(
    session: AsyncSession, workspace: str
) -> None:
    assert workspace not in await load_catalog(session)
    reference = reference_definitions()
    assert reference.version == 0
    assert reference.definitions.north_star == "orders"
