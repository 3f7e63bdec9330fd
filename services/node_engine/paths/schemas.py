"""The admin API's request and response bodies for growth paths and their versions
(``/api/engine/workspaces/{workspace}/paths``). The file model is in
:mod:`services.node_engine.paths.files`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from services.admin_api import SourceIn
from services.node_engine.paths.compiled import Branch as CompiledBranch
from services.node_engine.paths.compiled import GrowthPath, Node, Stage, Tiers
from shared.durations import format_duration


class PublishIn(SourceIn):
    migration: Literal["pin", "migrate", "restart"] = Field(
        default="pin",
        description="How accounts on older versions move to this one: `pin` (they stay), "
        "`migrate` (to the mapped or same node) or `restart` (from the first stage).",
    )
    node_map: dict[str, str] = Field(
        default_factory=dict,
        description="With `migrate`: old stage or node id -> new stage or node id.",
    )


class VersionOut(BaseModel):
    path_id: str
    version: int
    name: str
    source_name: str
    digest: str = Field(description="SHA-256 of the file's data (not its layout or comments).")
    migration: str
    node_map: dict[str, str]
    published_at: datetime
    published_by: str = Field(
        description="Who published it: the admin token's label, or `operator` (the "
        "configured admin token, the CLI)."
    )


class PathOut(BaseModel):
    workspace: str
    path_id: str
    name: str = Field(description="The current version's name.")
    current_version: int
    paused: bool = Field(description="Paused: data is kept, accounts do not move, nothing fires.")
    updated_at: datetime


class PathPage(BaseModel):
    items: list[PathOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class PathDetailOut(PathOut):
    versions: list[VersionOut] = Field(description="Every version, oldest first.")


class BranchOut(BaseModel):
    when: str | None
    goto: str


class EscalationOut(BaseModel):
    level: int
    at: str = Field(description="ISO 8601 duration from the due date's anchor.")
    notify: list[str]
    action: str
    reason: str | None


class NodeOut(BaseModel):
    id: str
    name: str
    complete_when: str
    skip_when: str | None
    due: str | None
    due_from: str
    notify: list[str]
    escalations: list[EscalationOut]
    next: list[BranchOut]
    reentry: str


class StageOut(BaseModel):
    id: str
    name: str
    complete_when: str | None
    notify: list[str]
    nodes: list[NodeOut]
    next: list[BranchOut]


class BenefitOut(BaseModel):
    id: str
    name: str


class TierLevelOut(BaseModel):
    id: str
    name: str
    enter_at: float
    exit_below: float
    benefits: list[BenefitOut]


class TiersOut(BaseModel):
    label: str
    metric: str
    stages: list[str]
    notify: list[str]
    levels: list[TierLevelOut]


class AggregateOut(BaseModel):
    key: str = Field(description="The name the engine keeps this figure under.")
    kind: str = Field(description="`count`, `sum` or `distinct_users`.")
    event: str | None = Field(description="The event name; none for any event.")
    property: str | None
    where: str | None
    role: str | None = Field(description="Only events by a user in this role.")
    within: str | None = Field(description="A sliding window (ISO 8601); none for all time.")


class SummaryOut(BaseModel):
    """A compiled version: what the engine runs."""

    id: str
    name: str
    business_type: str
    enrol_when: str
    review_every: str
    stages: list[StageOut]
    tiers: TiersOut | None
    aggregates: list[AggregateOut] = Field(description="Figures kept per account.")

    @classmethod
    def from_path(cls, path: GrowthPath) -> SummaryOut:
        """The compiled path as the admin API shows it (durations in ISO 8601)."""
        return cls(
            id=path.id,
            name=path.name,
            business_type=path.business_type,
            enrol_when=path.enrol_when.source,
            review_every=_duration(path.review_seconds) or "",
            stages=[_stage(stage) for stage in path.stages],
            tiers=None if path.tiers is None else _tiers(path.tiers),
            aggregates=[
                AggregateOut(
                    key=a.key,
                    kind=a.kind.value,
                    event=a.event,
                    property=a.prop,
                    where=a.where_source,
                    role=a.role,
                    within=_duration(a.window_seconds),
                )
                for a in path.aggregates
            ],
        )


def _stage(stage: Stage) -> StageOut:
    return StageOut(
        id=stage.id,
        name=stage.name,
        complete_when=stage.complete_when.source if stage.complete_when else None,
        notify=list(stage.notify),
        next=_branches(stage.next),
        nodes=[_node(node) for node in stage.nodes],
    )


def _node(node: Node) -> NodeOut:
    return NodeOut(
        id=node.id,
        name=node.name,
        complete_when=node.complete_when.source,
        skip_when=node.skip_when.source if node.skip_when else None,
        due=_duration(node.due_seconds),
        due_from=node.due_from,
        notify=list(node.notify),
        escalations=[
            EscalationOut(
                level=e.level,
                at=_duration(e.at_seconds) or "",
                notify=list(e.notify),
                action=e.action,
                reason=e.reason,
            )
            for e in node.escalations
        ],
        next=_branches(node.next),
        reentry=node.reentry if isinstance(node.reentry, str) else _duration(node.reentry) or "",
    )


def _tiers(tiers: Tiers) -> TiersOut:
    return TiersOut(
        label=tiers.label,
        metric=tiers.metric.source,
        stages=sorted(tiers.stages),
        notify=list(tiers.notify),
        levels=[
            TierLevelOut(
                id=level.id,
                name=level.name,
                enter_at=level.enter_at,
                exit_below=level.exit_below,
                benefits=[BenefitOut(id=b.id, name=b.name) for b in level.benefits],
            )
            for level in tiers.levels
        ],
    )


def _branches(items: tuple[CompiledBranch, ...]) -> list[BranchOut]:
    return [BranchOut(when=b.when.source if b.when else None, goto=b.goto) for b in items]


def _duration(seconds: int | None) -> str | None:
    return None if seconds is None else format_duration(timedelta(seconds=seconds))


class VersionDetailOut(VersionOut):
    current: bool = Field(description="Whether this is the path's current version.")
    source: str = Field(description="The file as published.")
    summary: SummaryOut


class ValidOut(BaseModel):
    valid: bool = True
    summary: SummaryOut
