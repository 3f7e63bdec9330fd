"""What a published transition says on ``milepost.triggers``. Pure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.node_engine.core.state import AccountState, Transition


def trigger_fields(state: AccountState, transition: Transition) -> dict[str, Any]:
    """The fields of the :class:`~shared.contracts.triggers.TriggerEnvelope` of a
    transition that publishes one (``transition.trigger_kind`` is not ``None``)."""
    kind = transition.trigger_kind
    assert kind is not None
    cause = transition.cause_id
    return {
        "schema_version": 1,
        "trigger_id": transition.id,
        "workspace_id": state.workspace_id,
        "account_id": state.account_id,
        "path_id": state.path_id,
        "path_version": state.path_version,
        "stage": transition.stage,
        "node": transition.node,
        "kind": kind,
        "target_roles": transition.target_roles,
        "reason": transition.reason,
        "causing_event_id": None if cause.startswith(("timer:", "move:")) else cause,
        "occurred_at": datetime.fromtimestamp(transition.occurred_at, UTC),
        "payload": transition.payload,
    }
