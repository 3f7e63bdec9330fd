"""Helpers for the messaging tests: triggers, contacts and the reference playbooks."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.contacts.directory import Contact
from services.messaging.playbooks.files import PublishedPlaybook
from services.messaging.playbooks.service import (
    REFERENCE_PLAYBOOKS,
    read_playbook,
)
from services.messaging.policies.budgets import BudgetLimits
from services.messaging.policies.timing import QuietHours
from services.messaging.processing.consumer import FencedConsumer
from services.messaging.processing.planning import Policies
from services.messaging.processing.received import trigger_from_json
from shared.contracts.triggers import TriggerEnvelope, TriggerRecord

T0 = datetime(2026, 3, 2, 2, tzinfo=UTC)
"""A Monday, 10:00 in Shanghai: inside working hours and outside quiet hours."""
WORKSPACE = "ws_test"
POLICIES = Policies(
    opt_in_categories=frozenset({"marketing"}),
    quiet=QuietHours(time(21), time(8)),
    default_timezone="Asia/Shanghai",
    budgets=BudgetLimits(per_contact=3, per_account_role=6, window=timedelta(days=7)),
)


def reference_playbook(name: str, workspace: str = WORKSPACE) -> PublishedPlaybook:
    file = REFERENCE_PLAYBOOKS / f"{name}.yaml"
    return PublishedPlaybook(
        workspace, f"{name}-outreach", 1, read_playbook(file.name, file.read_text())
    )


def trigger_envelope(
    kind: str = "node_overdue",
    *,
    trigger_id: str = "t-1",
    path_id: str = "platform-merchant",
    stage: str = "account_setup",
    node: str | None = "complete_profile",
    roles: tuple[str, ...] = ("admin",),
    payload: dict[str, Any] | None = None,
    workspace: str = WORKSPACE,
    account: str = "acme",
    at: datetime = T0,
    reason: str | None = None,
) -> TriggerEnvelope:
    return TriggerEnvelope.model_validate(
        {
            "trigger_id": trigger_id,
            "workspace_id": workspace,
            "account_id": account,
            "path_id": path_id,
            "path_version": 1,
            "stage": stage,
            "node": node,
            "kind": kind,
            "target_roles": list(roles),
            "reason": reason or f"{node}: overdue",
            "occurred_at": at,
            "payload": payload or {},
        }
    )


def read(envelope: TriggerEnvelope) -> TriggerRecord:
    """The trigger as messaging's consumers decode it from the envelope's record."""
    return trigger_from_json(envelope.model_dump_json())


def trigger(kind: str = "node_overdue", **changes: Any) -> TriggerRecord:
    """A trigger (see :func:`trigger_envelope` for the changes) as messaging reads it."""
    return read(trigger_envelope(kind, **changes))


def person(contact_id: str, *roles: str, **fields: Any) -> Contact:
    values: dict[str, Any] = {
        "account_id": "acme",
        "email": f"{contact_id}@acme.example",
        "roles": frozenset(roles),
        **fields,
    }
    return Contact(WORKSPACE, contact_id, **values)


def owner(email: str = "csm@milepost.example") -> Contact:
    return Contact(
        WORKSPACE,
        f"owner:{email}",
        email=email,
        roles=frozenset({"account_owner"}),
        is_account_owner=True,
    )


RISK_AT = datetime(2026, 3, 2, 9, 30, 12, 345000, tzinfo=timezone(timedelta(hours=8)))
"""A risk change's time: an offset and microseconds, as a body must keep them."""


def risk_payload(sentence: str) -> dict[str, Any]:
    """A risk change's payload with one reason saying ``sentence``: floats, an integer, a
    null and nesting, as encodings must keep them."""
    return {
        "from": "low",
        "to": "high",
        "signals": ["data_export"],
        "reasons": [
            {
                "signal": "data_export",
                "severity": "high",
                "sentence": sentence,
                "measure": 20_700.0,
                "threshold": 3.5,
                "figures": {"rows_7d": 0.1, "weekly_average": None, "count": 7},
            }
        ],
    }


def applies_of(consumer: FencedConsumer[Any], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the batches ``consumer`` applies from now on (its ``apply`` still runs)."""
    sizes: list[int] = []
    apply = consumer.apply

    async def noted(session: AsyncSession, items: list[Any], now: datetime) -> None:
        sizes.append(len(items))
        await apply(session, items, now)

    monkeypatch.setattr(consumer, "apply", noted)
    return sizes
