"""Replaying a hand-made history: the numbers are counted by hand (see tiny.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.node_engine.paths.service import compile_source
from services.node_engine.simulation.replay import Replay, Tally, Totals
from shared.contracts.events import EventEnvelope, EventType
from shared.contracts.triggers import TriggerEnvelope
from shared.event_log import read_lines
from tests.services.node_engine.simulation import tiny
from tests.services.node_engine.simulation.tiny import CURRENT, PATH, T0, lines

DAY = 86400


def replay(horizon_days: int = 3, every: int = DAY) -> tuple[Totals, tuple[Tally, ...]]:
    simulated = compile_source("tiny.yaml", PATH, version=2)
    current = compile_source("tiny.yaml", CURRENT, version=1)
    run = Replay([simulated, current], every_seconds=every)
    for event in read_lines(line.encode() for line in lines()):
        run.add(event)
    return run.finish(horizon_seconds=horizon_days * DAY)


def at(days: float, hours: float = 0) -> int:
    return int((T0.replace(hour=0) + timedelta(days=days, hours=hours)).timestamp())


def test_events_are_attributed_and_counted() -> None:
    totals, (simulated, current) = replay()
    assert (totals.events, totals.unattributed) == (7, 1)
    assert totals.first_at == int(T0.timestamp())
    assert totals.end_at == int((T0 + timedelta(days=6)).timestamp())
    assert simulated.enrolled == current.enrolled == 2


def test_triggers_by_kind_node_and_role() -> None:
    _, (simulated, _) = replay()
    assert simulated.triggers == {
        ("stage_entered", "start", None): 2,
        ("node_entered", "start", "listing"): 2,
        ("node_completed", "start", "listing"): 1,
        ("node_entered", "start", "orders"): 1,
        ("node_completed", "start", "orders"): 1,  # the user-only orders count for acme
        ("stage_entered", "done", None): 1,
        ("node_overdue", "start", "listing"): 1,  # bolt, day 2 at 12:00
        ("escalation", "start", "listing"): 1,  # bolt, day 4 at 12:00
    }
    assert simulated.roles == {
        ("stage_entered", "admin"): 2,
        ("stage_entered", "decision_maker"): 1,
        ("node_entered", "admin"): 3,
        ("node_entered", "end_user"): 1,
        ("node_completed", "admin"): 2,
        ("node_completed", "end_user"): 1,
        ("node_overdue", "admin"): 1,
        ("escalation", "account_owner"): 1,
    }


def test_time_to_complete_and_condition_failures() -> None:
    _, (simulated, _) = replay()
    assert simulated.completion_days == {"listing": (1.0,), "orders": (2.0,)}
    assert simulated.failures == {("start", None, "sum of 'amount': 'n/a' is not a number"): 1}


def test_snapshots_count_the_accounts_at_each_midnight_and_at_the_end() -> None:
    _, (simulated, current) = replay()
    listing, orders, done = ("start", "listing"), ("start", "orders"), ("done", None)
    assert [(s.at, dict(s.positions)) for s in simulated.snapshots] == [
        (at(1), {listing: 2}),
        (at(2), {listing: 1, orders: 1}),
        (at(3), {listing: 1, orders: 1}),
        (at(4), {listing: 1, done: 1}),
        (at(5), {listing: 1, done: 1}),
        (at(6), {listing: 1, done: 1}),
        (at(6, 9), {listing: 1, done: 1}),
    ]
    assert dict(current.snapshots[-1].positions) == {listing: 1, orders: 1}


def test_without_a_horizon_timers_after_the_last_event_do_not_fire() -> None:
    _, (simulated, _) = replay(horizon_days=0)
    assert ("escalation", "start", "listing") not in simulated.triggers
    assert simulated.snapshots[-1].at == at(3, 9)


def test_snapshot_period_is_free() -> None:
    _, (simulated, _) = replay(every=12 * 3600)
    assert [s.at for s in simulated.snapshots][:3] == [at(0, 12), at(1), at(1, 12)]
    with pytest.raises(ValueError, match="longer than zero"):
        Replay([], every_seconds=0)


class Recorder:
    """An observer that keeps what it is told, in order."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    def observe(self, event: EventEnvelope) -> None:
        self.told.append(("event", event.event_id))

    def trigger(self, trigger: TriggerEnvelope) -> None:
        self.told.append((trigger.kind.value, trigger.account_id))


def test_an_observer_sees_each_event_and_the_first_paths_triggers_in_time_order() -> None:
    simulated = compile_source("tiny.yaml", PATH, version=2)
    current = compile_source("tiny.yaml", CURRENT, version=1)
    recorder = Recorder()
    run = Replay([simulated, current], every_seconds=DAY, observer=recorder)
    events = list(read_lines(line.encode() for line in lines()))
    for item in events:
        run.add(item)
    _, (tally, _) = run.finish(horizon_seconds=3 * DAY)
    kinds = [kind for kind, _ in recorder.told]
    assert kinds.count("event") == len(events)
    assert len(kinds) - len(events) == sum(tally.triggers.values())  # the first path's only
    assert kinds.index("stage_entered") > 0  # planned after the event that caused it
    assert recorder.told[-1] == ("escalation", "bolt")  # fired by the horizon, last


SIZED = """
id: sized
name: Sized path
business_type: service
enrol_when: event == "milepost.crm.deal.stage_changed"
stages:
  - id: deal
    name: Deal
    nodes:
      - id: qualify
        name: Qualify
        complete_when: crm.deal_stage == "qualified"
        next:
          - {when: account.size >= 500, goto: large}
      - id: small
        name: Small company
        complete_when: happened("Done")
      - id: large
        name: Large company
        complete_when: happened("Done")
"""


def test_an_account_record_sent_before_the_enrolling_deal_is_known() -> None:
    """`milepost paths simulate`: the CRM account record (size 800) first, then the deal
    that enrols the account; the branch on account.size takes the large-company route."""
    crm = EventType.CRM
    run = Replay([compile_source("sized.yaml", SIZED, version=1)])
    for line in [
        tiny.event(
            0,
            crm,
            "milepost.crm.account.upserted",
            "crm",
            "acme",
            "a1",
            properties={"account_id": "acme", "name": "Acme", "size": 800},
        ),
        tiny.event(
            0.5,
            crm,
            "milepost.crm.deal.stage_changed",
            "crm",
            "acme",
            "a2",
            properties={"deal_id": "d1", "stage": "qualified", "amount": 5000},
        ),
    ]:
        run.add(EventEnvelope.model_validate_json(line))
    _, (tally,) = run.finish()
    assert dict(tally.snapshots[-1].positions) == {("deal", "large"): 1}
