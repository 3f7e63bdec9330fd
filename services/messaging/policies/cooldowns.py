"""Cooldowns per account and playbook step. Pure.

A step with a ``cooldown`` plans for one account at most once per cooldown: a message or
task of that step for that account from another trigger within the cooldown is suppressed
with the reason ("cooldown: ..."). The messages of one trigger all go (two decision makers
both get the check-in). The cooldown counts from when the earlier plan was made; plans
that were suppressed or failed do not start one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.durations import format_duration

StepKey = tuple[str, str, str]
"""(workspace id, account id, ``playbook/step``)."""


@dataclass(frozen=True, slots=True)
class StepPlanned:
    """A step planned for an account by a trigger, at a moment."""

    workspace_id: str
    account_id: str
    step_id: str
    trigger_id: str
    at: datetime

    @property
    def key(self) -> StepKey:
        return (self.workspace_id, self.account_id, self.step_id)


class CooldownBook:
    """The latest plan of each (account, step): those loaded from the ledger plus those the
    batch makes, in order."""

    def __init__(self, planned: Iterable[StepPlanned] = ()) -> None:
        self.latest: dict[StepKey, StepPlanned] = {}
        for item in planned:
            self.add(item)

    def add(self, item: StepPlanned) -> None:
        last = self.latest.get(item.key)
        if last is None or item.at >= last.at:
            self.latest[item.key] = item

    def refusal(self, item: StepPlanned, cooldown: timedelta | None) -> str | None:
        """Why ``item`` may not be planned now; ``None`` when it may."""
        last = self.latest.get(item.key)
        if cooldown is None or last is None or last.trigger_id == item.trigger_id:
            return None
        if item.at - last.at >= cooldown:
            return None
        return (
            f"cooldown: {item.step_id} was planned for this account at "
            f"{last.at.isoformat(timespec='seconds')} (trigger {last.trigger_id}); "
            f"cooldown {format_duration(cooldown)}"
        )
