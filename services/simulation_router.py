"""The HTTP simulation of a draft growth path on a workspace's recent events, with the
outreach its triggers would produce: ``POST /api/simulation/workspaces/{workspace}/paths``.

It combines the engine's replay and messaging's planning, so it lives beside
:mod:`services.cli` (services do not import each other), which hands it to ``milepost
messaging`` in production; embedded mode mounts it on its one port. Nothing is written: the
workspace's latest events are read back from each partition's end of the events topic
(:func:`shared.event_log.read_latest`, in no consumer group), the replay is pure. The answer
is the JSON of ``milepost paths simulate --json`` (with ``"outreach"`` when planned).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, params
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from services.admin_api import FILE_ERROR_RESPONSES, Session, SourceIn, WorkspaceId
from services.messaging.app import policies_of
from services.messaging.playbooks.files import PublishedPlaybook
from services.messaging.playbooks.service import load_catalog, read_playbook
from services.messaging.settings import MessagingSettings
from services.messaging.simulation.report import outreach_json
from services.messaging.simulation.service import OutreachSimulation
from services.node_engine.errors import PathNotFound
from services.node_engine.paths.compiled import GrowthPath
from services.node_engine.paths.service import compile_source, show
from services.node_engine.simulation.report import report_json
from services.node_engine.simulation.service import simulate
from shared.bus import Bus
from shared.contracts.topics import Topic
from shared.definitions import definition_digest
from shared.errors import BusUnavailable, Unavailable
from shared.event_log import read_latest

MAX_EVENTS = 50_000
"""The most recent events a simulation replays, at most."""
DEFAULT_EVENTS = 10_000
MAX_PLAYBOOKS = 20
RETRY_AFTER_SECONDS = 5
"""What a 503 asks the client to wait when the events topic cannot be read."""


class SimulationIn(SourceIn):
    """A draft growth-path file, and what to replay it on."""

    model_config = ConfigDict(extra="forbid")

    events: int = Field(
        default=DEFAULT_EVENTS,
        ge=1,
        le=MAX_EVENTS,
        description="Replay the workspace's latest this many events by time, found among the "
        "last this many records of each partition of the events topic.",
    )
    outreach: bool = Field(
        default=True, description="Also plan what the playbooks would send for each trigger."
    )
    playbooks: list[SourceIn] = Field(
        default_factory=list,
        max_length=MAX_PLAYBOOKS,
        description="Draft playbook files to plan with instead of the workspace's current ones.",
    )


class SimulationOut(BaseModel):
    """The simulation report (see ``milepost paths simulate --json``)."""

    model_config = ConfigDict(extra="allow")


def simulation_router(bus: Bus, dependencies: Sequence[params.Depends]) -> APIRouter:
    """The simulation route, behind the admin-token ``dependencies``."""
    router = APIRouter(
        prefix="/api/simulation/workspaces/{workspace}",
        tags=["simulation"],
        dependencies=list(dependencies),
    )

    @router.post(
        "/paths",
        summary="Simulate a draft growth path on the workspace's recent events",
        responses=FILE_ERROR_RESPONSES,
    )
    async def simulate_path(
        session: Session, workspace_id: WorkspaceId, body: SimulationIn
    ) -> SimulationOut:
        draft, current, same = await _draft_and_current(session, workspace_id, body)
        planner = (
            OutreachSimulation(
                await _playbooks(session, workspace_id, body.playbooks),
                policies_of(MessagingSettings()),
            )
            if body.outreach
            else None
        )
        try:
            log = await read_latest(bus, Topic.EVENTS, workspace_id=workspace_id, count=body.events)
        except BusUnavailable as exc:
            raise Unavailable(
                f"the events topic cannot be read now ({exc}); retry later",
                field="events",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from exc
        report = await asyncio.to_thread(
            simulate, draft, log, current=current, same_content=same, observer=planner
        )
        data: dict[str, Any] = report_json(report)
        if planner is not None:
            data["outreach"] = outreach_json(planner.outreach)
        return SimulationOut.model_validate(data)

    return router


async def _draft_and_current(
    session: AsyncSession, workspace_id: str, body: SimulationIn
) -> tuple[GrowthPath, GrowthPath | None, bool]:
    """The draft compiled as the next version (422 at its line when invalid), the current
    version of the same path, and whether the draft is its content unchanged."""
    draft = compile_source(body.source_name, body.source, version=1)
    try:
        version = await show(session, workspace_id, draft.id)
    except PathNotFound:
        return draft, None, False
    same = version.info.digest == definition_digest(body.source, source=body.source_name)
    number = version.info.version + (0 if same else 1)
    return compile_source(body.source_name, body.source, version=number), version.path, same


async def _playbooks(
    session: AsyncSession, workspace_id: str, files: Sequence[SourceIn]
) -> list[PublishedPlaybook]:
    """The draft playbooks (as version 0; 422 at their line) or the workspace's current ones."""
    if files:
        drafts = [read_playbook(file.source_name, file.source) for file in files]
        return [PublishedPlaybook(workspace_id, draft.id, 0, draft) for draft in drafts]
    return list((await load_catalog(session)).get(workspace_id, ()))
