"""What the playbooks would send, day by day, for the triggers of a simulated replay. Pure.

:class:`OutreachSimulation` is told every replayed event (to learn contacts as the contact
directory does) and every trigger the simulated growth path fires, at the trigger's time.
It plans each trigger exactly as the live planner does (recipients, fallbacks, channel,
consent, the rendered message, delay, send window and quiet hours) and applies the step
cooldowns and the budgets against what it planned before, so each outcome says what the
policies decided. Nothing
is stored or sent; unsubscribe links are placeholders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.messaging.contacts.directory import (
    Contact,
    ContactFacts,
    facts_from,
    merge,
    owner_contact,
)
from services.messaging.deliveries.message import Message
from services.messaging.playbooks.files import PublishedPlaybook
from services.messaging.policies.budgets import PressureBook
from services.messaging.policies.cooldowns import CooldownBook
from services.messaging.processing.planning import (
    Policies,
    TaskPlan,
    plan_trigger,
    settled,
    settled_task,
)
from services.messaging.processing.received import trigger_from_json
from shared.contracts.events import EventEnvelope
from shared.contracts.triggers import TriggerEnvelope

SIMULATED_UNSUBSCRIBE_URL = "https://unsubscribe.invalid/simulated"
"""Stands in for a contact's signed unsubscribe link in a simulated message."""


@dataclass(frozen=True, slots=True)
class Outreach:
    """One trigger and what the playbooks made of it: messages (each with its status and
    reason) and tasks. Neither: no playbook step matched."""

    trigger: TriggerEnvelope
    messages: tuple[Message, ...]
    tasks: tuple[TaskPlan, ...]


class OutreachSimulation:
    """Plans every trigger it is told of against the contacts known at that moment."""

    def __init__(self, playbooks: Sequence[PublishedPlaybook], policies: Policies) -> None:
        self.playbooks = tuple(playbooks)
        self.policies = policies
        self.contacts: dict[tuple[str, str], Contact] = {}
        self.members: dict[tuple[str, str], set[str]] = {}
        """(workspace id, account id) -> its contacts' ids."""
        self.owners: dict[tuple[str, str], str] = {}
        self.pressure = PressureBook()
        self.cooldowns = CooldownBook()
        self.outreach: list[Outreach] = []

    def observe(self, event: EventEnvelope) -> None:
        """Learn what ``event`` states about a contact or an account's owner."""
        facts = facts_from(event)
        if facts is None:
            return
        key = (facts.workspace_id, facts.contact_id)
        if isinstance(facts, ContactFacts):
            before = self.contacts.get(key)
            after = self.contacts[key] = merge(before, facts)
            if before is not None and before.account_id != after.account_id:
                self.members.get((facts.workspace_id, before.account_id or ""), set()).discard(
                    facts.contact_id
                )
            if after.account_id is not None:
                self.members.setdefault((facts.workspace_id, after.account_id), set()).add(
                    facts.contact_id
                )
        else:
            self.contacts[key] = owner_contact(self.contacts.get(key), facts)
            self.owners[(facts.workspace_id, facts.account_id)] = facts.contact_id

    def trigger(self, trigger: TriggerEnvelope) -> None:
        """Plan ``trigger`` at its own time, as the trigger worker reads it, cooldowns and
        budgets applied, and keep the outcome."""
        plans = plan_trigger(
            trigger_from_json(trigger.model_dump_json()),
            self.playbooks,
            self.people_of(trigger.workspace_id, trigger.account_id),
            policies=self.policies,
            now=trigger.occurred_at,
            unsubscribe_url=lambda _contact, _category: SIMULATED_UNSUBSCRIBE_URL,
        )
        messages = tuple(
            settled(message, self.pressure, self.cooldowns, self.policies.budgets)
            for message in plans.messages
        )
        tasks = tuple(settled_task(task, self.cooldowns) for task in plans.tasks)
        self.outreach.append(Outreach(trigger, messages, tasks))

    def people_of(self, workspace_id: str, account_id: str) -> list[Contact]:
        """The account's contacts by id, then its owner, as the directory returns them."""
        ids = sorted(self.members.get((workspace_id, account_id), ()))
        people = [self.contacts[(workspace_id, contact_id)] for contact_id in ids]
        owner = self.contacts.get((workspace_id, self.owners.get((workspace_id, account_id), "")))
        return [*people, owner] if owner is not None else people
