"""What a run put out, and how it compares with the undisturbed run of the same workload.

Outputs: the triggers on ``milepost.triggers`` (by ``trigger_id``, deterministic: the same
workload in the same workspace gives the same ids), the deliveries the webhook receiver
accepted (by the trigger in their body, each with its ``webhook-id``), the deliveries given
up on (``milepost.deliveries.dlq``), the dead letters of the consumers, and the engine's
history rows written twice.

The receiver (tests/services/messaging/http_sink.py) answers from a seeded script: 200,
or for the flaky receiver 503 for half the requests and, for some, a 200 after the sender's
timeout (so the sender retries what the receiver already took). It deduplicates by
``webhook-id``, as Standard Webhooks asks; those repeats are counted, not duplicates.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from shared.contracts import Topic
from shared.contracts.topics import DeadLetter, FailedDelivery
from shared.contracts.triggers import TriggerEnvelope, TriggerKind
from tests.chaos.system import WEBHOOK_TIMEOUT_S, Deployment
from tests.services.messaging.http_sink import Answer, Received
from tests.shared.bus.support import read_to_end

CONSUMER_DLQS = (Topic.EVENTS_DLQ, Topic.TRIGGERS_DLQ, Topic.SCORES_DLQ)


def flaky_answers(rng: random.Random, count: int) -> list[Answer]:
    """Half 503s; one in twenty a 200 that comes after the sender gave up."""
    answers = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.5:
            answers.append(Answer(503, b"busy"))
        elif roll < 0.55:
            answers.append(Answer(200, b"slow", delay_seconds=WEBHOOK_TIMEOUT_S * 1.5))
        else:
            answers.append(Answer())
    return answers


class _Trigger:
    """Reads a trigger, or None for a record that is not one (a poison record)."""

    @staticmethod
    def model_validate_json(value: bytes) -> TriggerEnvelope | None:
        try:
            return TriggerEnvelope.model_validate_json(value)
        except ValidationError:
            return None


@dataclass(frozen=True, slots=True)
class Outputs:
    triggers: Counter[str]
    """Records on the triggers topic, by trigger id."""
    deliveries: dict[str, set[str]]
    """Trigger id -> the webhook ids the receiver took for it."""
    repeats: int
    """Requests the receiver dropped as a webhook id it had taken already."""
    changed_bodies: int
    """Repeats of a webhook id with a different body (must be 0)."""
    given_up: frozenset[str]
    """Trigger ids whose delivery was dead-lettered after the last try."""
    given_up_for: Counter[str]
    """Why, by reason."""
    dead_letters: tuple[DeadLetter, ...]
    identity: dict[str, str]
    """Trigger id -> what is the same in every run ("": not compared; see :func:`identities`)."""
    history_twice: int
    """The engine's history rows whose transition id another row has (must be 0)."""

    @property
    def scored(self) -> int:
        """Score-driven triggers (not compared, see :func:`identities`)."""
        return sum(1 for name in self.identity.values() if not name)

    def identities(self, trigger_ids: Iterable[str]) -> Counter[str]:
        named = (self.identity.get(t, t) for t in trigger_ids)
        return Counter(name for name in named if name)


async def collect(
    deployment: Deployment, received: Sequence[Received], answers: Sequence[Answer]
) -> Outputs:
    """Read the topics to their end and sort the receiver's requests."""
    bus = deployment.bus()
    await bus.start()
    try:
        triggers = await read_to_end(bus, Topic.TRIGGERS, _Trigger)
        failed = await read_to_end(bus, Topic.DELIVERIES_DLQ, FailedDelivery)
        letters = [
            letter
            for topic in CONSUMER_DLQS
            for _, _, letter in await read_to_end(bus, topic, DeadLetter)
        ]
    finally:
        await bus.close()
    taken: dict[str, bytes] = {}
    deliveries: dict[str, set[str]] = {}
    repeats = changed = 0
    script = [*answers, *([Answer()] * max(0, len(received) - len(answers)))]
    for request, answer in zip(received, script, strict=False):
        if answer.status != 200:
            continue
        webhook_id = request.headers.get("webhook-id", "")
        if webhook_id in taken:
            repeats += 1
            changed += taken[webhook_id] != request.body
            continue
        taken[webhook_id] = request.body
        trigger = orjson.loads(request.body)["data"]["trigger_id"]
        deliveries.setdefault(trigger, set()).add(webhook_id)
    return Outputs(
        Counter(t.trigger_id for _, _, t in triggers if t is not None),
        deliveries,
        repeats,
        changed,
        frozenset(f.trigger_id for _, _, f in failed),
        Counter(f.reason[:80] for _, _, f in failed),
        tuple(letters),
        identities([t for _, _, t in triggers if t is not None]),
        await deployment.history_written_twice(),
    )


SCORED = frozenset({TriggerKind.RISK_CHANGED})


def identities(triggers: Sequence[TriggerEnvelope]) -> dict[str, str]:
    """Trigger id -> its identity across runs ("" for a score-driven one: not compared).

    A ``risk_changed`` trigger follows the score events the engine reads on
    ``milepost.scores`` beside the account's events on ``milepost.events``; which levels an
    account passes through, and whether a score that arrives before the account is on its
    path counts at all, depend on how the two topics interleave, which a restart changes.
    They are counted (:attr:`Outputs.scored`) but not compared."""
    found: dict[str, str] = {}
    for trigger in triggers:
        node = trigger.node or trigger.stage
        name = f"{trigger.kind} {trigger.account_id} {node} {trigger.trigger_id}"
        found[trigger.trigger_id] = "" if trigger.kind in SCORED else name
    return found


@dataclass(frozen=True, slots=True)
class Comparison:
    triggers: int
    deliveries: int
    lost_triggers: int
    lost_deliveries: int
    duplicated_triggers: int
    """The same transition published again under another trigger id."""
    duplicated_deliveries: int
    """A trigger the receiver took under two webhook ids."""
    unexpected_triggers: int
    """Transitions the undisturbed run did not make."""
    repeated_triggers: int
    """Trigger records published again with the same id (every consumer deduplicates on
    it: not a duplicate, but counted)."""
    given_up: int
    repeats: int
    changed_bodies: int
    history_twice: int
    examples: tuple[str, ...]
    """A few of the lost and unexpected triggers."""

    @property
    def lost(self) -> int:
        return self.lost_triggers + self.lost_deliveries

    @property
    def duplicated(self) -> int:
        """Outputs a consumer deduplicating by id would still see twice, and retried bodies
        that changed."""
        return (
            self.duplicated_triggers
            + self.duplicated_deliveries
            + self.changed_bodies
            + self.history_twice
        )

    @property
    def repeated(self) -> int:
        """Outputs repeated with the same id: trigger records and webhook requests."""
        return self.repeated_triggers + self.repeats

    def problems(self) -> list[str]:
        """Each way this run differs from the undisturbed one, in words."""
        found = {
            "triggers lost": self.lost_triggers,
            "deliveries lost": self.lost_deliveries,
            "triggers duplicated (same transition, another id)": self.duplicated_triggers,
            "deliveries duplicated": self.duplicated_deliveries,
            "retries of a webhook-id with a different body": self.changed_bodies,
            "transitions written twice in the engine's history": self.history_twice,
            "transitions the undisturbed run did not make": self.unexpected_triggers,
        }
        described = [f"{count} {what}" for what, count in found.items() if count]
        return described + [f"e.g. {example}" for example in self.examples] if described else []


def compare(run: Outputs, undisturbed: Outputs, *, failing_receiver: bool = False) -> Comparison:
    """``run`` against the undisturbed run. With a ``failing_receiver``, a delivery given up
    on after the last try is neither lost nor delivered (it is in the DLQ, as it should be);
    otherwise it is lost."""
    expected, got = undisturbed.identities(undisturbed.triggers), run.identities(run.triggers)
    delivered = run.identities(run.deliveries)
    lost_deliveries = undisturbed.identities(undisturbed.deliveries) - delivered
    if failing_receiver:
        lost_deliveries -= run.identities(run.given_up)
    extra = got - expected
    known = Counter(_transition(name) for name in expected.elements())
    again = Counter(_transition(name) for name in got.elements()) - known
    duplicated = sum(n for transition, n in again.items() if transition in known)
    examples = [f"lost {name}" for name in sorted(expected - got)[:3]]
    examples += [f"extra {name}" for name in sorted(extra)[:3]]
    return Comparison(
        triggers=len(run.triggers),
        deliveries=len(run.deliveries),
        lost_triggers=(expected - got).total(),
        lost_deliveries=lost_deliveries.total(),
        duplicated_triggers=duplicated,
        duplicated_deliveries=sum(len(ids) - 1 for ids in run.deliveries.values()),
        unexpected_triggers=extra.total() - duplicated,
        repeated_triggers=sum(n - 1 for n in run.triggers.values()),
        given_up=len(run.given_up),
        repeats=run.repeats,
        changed_bodies=run.changed_bodies,
        history_twice=run.history_twice,
        examples=tuple(examples),
    )


def _transition(identity: str) -> str:
    """An identity without its trigger id: kind, account and node."""
    return identity.rpartition(" ")[0]
