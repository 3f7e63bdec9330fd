"""Move an account to a newer version of its growth path, by that version's policy. Pure.

* ``pin``: the account stays on its version; the state comes back unchanged.
* ``restart``: the account starts the new version at its first stage and node, as if it
  enrolled now. Its facts are kept, and the aggregates the new version still reads.
* ``migrate``: the account keeps its history and moves to the matching place: the node
  map's target for its node (or else for its stage), else the node with the same id, else
  the first node of the same stage (entered as its re-entry rule allows), else it
  restarts. The node it leaves undone is forgotten, so it is entered as usual when
  reached again. The account keeps the rest of its node history, tier (when the level still exists),
  facts, and the aggregates the new version reads. An account that stays on its node keeps
  its time there; only the due date and escalations still ahead (by the new version's
  offsets) are set, for a new visit, so the old version's timers go stale.

Each move records a ``migrated`` transition in words, then what entering the new place
produces (stage and node entries, their timers), and the account advances as far as its
data allows. Ids derive from the account, both versions and the place, so applying the
same migration again yields the same ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from msgspec.structs import replace

from services.node_engine.core.state import (
    AccountState,
    Decision,
    NodeRecord,
    NodeStatus,
    TransitionKind,
)
from services.node_engine.core.transition import Step
from services.node_engine.paths.compiled import GrowthPath, Node, Stage

Policy = Literal["pin", "migrate", "restart"]


def migrate(
    state: AccountState,
    *,
    to: GrowthPath,
    policy: Policy,
    node_map: Mapping[str, str],
    now: datetime,
) -> Decision:
    """Place ``state`` (on an older version of ``to``'s path) on ``to`` by ``policy``."""
    if state.path_id != to.id:
        raise ValueError(f"state is on path {state.path_id}, not {to.id}")
    if policy == "pin" or state.path_version == to.version:
        return Decision(state)
    seconds = int(now.timestamp())
    used = {aggregate.key for aggregate in to.aggregates}
    kept = replace(
        state,
        path_version=to.version,
        aggregates={key: value for key, value in state.aggregates.items() if key in used},
        last_error=None,
    )
    cause = f"migration:{state.path_id}:{state.path_version}->{to.version}"
    target = _target(state, to, node_map) if policy == "migrate" else None
    if target is None:
        return _restart(kept, state, to, policy, seconds, cause)
    stage, node, force = target
    levels = {level.id for level in to.tiers.levels} if to.tiers else set()
    old_node = state.node if state.node in to.nodes_by_id else None
    step = Step(
        replace(
            kept,
            nodes={k: v for k, v in state.nodes.items() if k in to.nodes_by_id},
            tier=state.tier if state.tier in levels else None,
            node=old_node,
            node_entered_at=state.node_entered_at if old_node else None,
        ),
        to,
        seconds,
        cause,
    )
    _record(step, state, stage, node, policy)
    stays = stage.id == state.stage and (node.id if node else None) == old_node
    if stays and node is not None:
        record = step.nodes.get(node.id)
        visit = (record.visits if record else 0) + 1
        entered = state.node_entered_at if state.node_entered_at is not None else seconds
        step.nodes[node.id] = NodeRecord(NodeStatus.ACTIVE, visit, entered)
        step.schedule_node(node, visit, only_after=seconds)
    elif not stays:
        if old_node is not None and step.nodes[old_node].status is NodeStatus.ACTIVE:
            del step.nodes[old_node]  # not done: entered again as usual when reached
        step.place(None)
        step.goto(node.id if node else stage.id, force=force)
    step.advance()
    return step.decision()


def _target(
    state: AccountState, to: GrowthPath, node_map: Mapping[str, str]
) -> tuple[Stage, Node | None, bool] | None:
    """Where ``migrate`` puts the account on ``to``, and whether that place is entered
    whatever its re-entry rule (an explicit or same-id target); None: restart."""
    for key in (state.node, state.stage):
        mapped = node_map.get(key) if key else None
        if mapped is None:
            continue
        if mapped in to.nodes_by_id:
            mapped_node = to.nodes_by_id[mapped]
            return to.stages_by_id[mapped_node.stage], mapped_node, True
        if mapped in to.stages_by_id:
            mapped_stage = to.stages_by_id[mapped]
            return mapped_stage, (mapped_stage.nodes[0] if mapped_stage.nodes else None), True
    if state.node is not None and state.node in to.nodes_by_id:
        node = to.nodes_by_id[state.node]
        return to.stages_by_id[node.stage], node, True
    stage = to.stages_by_id.get(state.stage)
    if stage is None:
        return None
    if state.node is None:
        return stage, None, True
    return stage, (stage.nodes[0] if stage.nodes else None), False


def _restart(
    kept: AccountState,
    old: AccountState,
    to: GrowthPath,
    policy: Policy,
    now: int,
    cause: str,
) -> Decision:
    first = to.stages[0]
    fresh = replace(
        kept,
        enrolled_at=now,
        stage=first.id,
        stage_entered_at=now,
        node=None,
        node_entered_at=None,
        nodes={},
        tier=None,
    )
    step = Step(fresh, to, now, cause)
    note = "" if policy == "restart" else ": no matching stage or node, so it starts over"
    _record(step, old, first, None, policy, note)
    step.enter_stage(first, None)
    step.advance()
    return step.decision()


def _record(
    step: Step, old: AccountState, stage: Stage, node: Node | None, policy: Policy, note: str = ""
) -> None:
    where = node.id if node is not None else stage.id
    was = old.node or old.stage
    step.record(
        TransitionKind.MIGRATED,
        stage,
        node,
        f"moved from {old.path_id} v{old.path_version} ({was}) to v{step.path.version} "
        f"({where}) by the {policy} policy{note}",
        payload={
            "from_version": old.path_version,
            "to_version": step.path.version,
            "policy": policy,
            "from": was,
            "to": where,
        },
    )
