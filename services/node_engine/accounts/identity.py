"""The engine's view of an event attributed to an account (attribution itself is
:mod:`shared.identity`). Pure."""

from __future__ import annotations

from services.node_engine.core.state import Observation
from shared.contracts.events import AnyEvent
from shared.identity import facts_from


def observation_of(event: AnyEvent, account_id: str, actor_roles: frozenset[str]) -> Observation:
    """The engine's view of ``event``, attributed to ``account_id``."""
    return Observation(
        event_id=event.event_id,
        workspace_id=event.workspace_id,
        account_id=account_id,
        type=event.type.value,
        name=event.event,
        user_id=event.user_id,
        actor_roles=actor_roles,
        properties=event.properties,
        traits=event.traits,
        source=event.source,
        occurred_at=int(event.timestamp.timestamp()),
        facts=facts_from(event),
    )
