"""The portfolio's heat map: scored accounts per tier, risk level and band together."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.services.scoring.test_endpoints import Api, open_api, score


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async for opened in open_api(database_url):
        yield opened


async def test_the_cells_add_up_to_the_portfolio(api: Api) -> None:
    empty = (await api.get("/portfolio/cells")).json()
    assert empty == {"workspace": api.name, "accounts": 0, "cells": []}
    await score(api)
    cells = (await api.get("/portfolio/cells")).json()
    portfolio = (await api.get("/portfolio")).json()
    assert cells["accounts"] == portfolio["accounts"] == 2
    by_risk: dict[str | None, int] = {}
    for cell in cells["cells"]:
        by_risk[cell["risk_level"]] = by_risk.get(cell["risk_level"], 0) + cell["accounts"]
        assert set(cell) == {"tier", "risk_level", "band", "accounts", "mean_health", "north_star"}
    assert by_risk == {g["key"]: g["accounts"] for g in portfolio["by_risk_level"]}
    star = sum(c["north_star"] or 0 for c in cells["cells"])
    assert star == portfolio["north_star"]["value"]


async def test_the_cells_need_the_admin_token(api: Api) -> None:
    answer = await api.client.get(f"{api.base}/portfolio/cells", headers={"Authorization": ""})
    assert answer.status_code == 401
