"""``/api/scoring/workspaces/{workspace}/portfolio/cells``: the scored accounts per tier,
risk level and health band together (the console's heat map), where ``/portfolio``
gives each of them alone. Admin token."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.params import Depends
from pydantic import BaseModel, Field

from services.admin_api import ERROR_RESPONSES, Session, WorkspaceId
from services.scoring.accounts.repository import distribution


class CellOut(BaseModel):
    tier: str | None = Field(description="Null: not placed in a tier yet.")
    risk_level: str | None
    band: str | None
    accounts: int
    mean_health: float | None
    north_star: float | None = Field(description="The North Star's sum over these accounts.")


class CellsOut(BaseModel):
    workspace: str
    accounts: int
    cells: list[CellOut]


def insights_router(*, dependencies: list[Depends]) -> APIRouter:
    router = APIRouter(
        prefix="/api/scoring/workspaces/{workspace}",
        tags=["scoring"],
        dependencies=dependencies,
        responses=ERROR_RESPONSES,
    )

    @router.get("/portfolio/cells", summary="Accounts per tier, risk level and band together")
    async def get_cells(workspace: str, session: Session, workspace_id: WorkspaceId) -> CellsOut:
        found = await distribution(session, workspace_id)
        cells = [
            CellOut(
                tier=tier,
                risk_level=risk,
                band=band,
                accounts=count,
                mean_health=None if mean is None else round(mean, 1),
                north_star=star,
            )
            for tier, risk, band, count, mean, star in found
        ]
        return CellsOut(workspace=workspace, accounts=sum(c.accounts for c in cells), cells=cells)

    return router
