"""The pipeline benchmark's offered load: it never asks for what ingest may reorder."""

from __future__ import annotations

from tests.benchmarks.pipeline import APPROVAL_DELAY_S, TRIGGERING_EVERY, _Call, _Calls


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def ten(calls: _Calls) -> list[_Call]:
    return [calls.next() for _ in range(TRIGGERING_EVERY)]


def approvals(batch: list[_Call]) -> list[str]:
    return [
        call.body["context"]["groupId"]
        for call in batch
        if call.body.get("event") == "Merchant Approved"
    ]


def test_a_merchant_is_approved_only_a_second_after_ingest_accepted_its_group_call() -> None:
    clock = FakeMonotonic()
    calls = _Calls("t", monotonic=clock)
    first = ten(calls)
    joining = [call.joins for call in first if call.joins is not None]
    assert joining == [1]
    assert first[0].triggering
    assert first[0].body["type"] == "group"

    clock.now += 5 * APPROVAL_DELAY_S
    assert approvals(ten(calls)) == []  # sent, never accepted: never approved

    calls.joined(joining)
    clock.now += APPROVAL_DELAY_S / 2
    assert approvals(ten(calls)) == []

    clock.now += APPROVAL_DELAY_S / 2
    approved = [call for call in ten(calls) if call.body.get("event") == "Merchant Approved"]
    assert [call.body["context"]["groupId"] for call in approved] == [calls.account(1)]
    assert all(call.triggering for call in approved)
    assert approvals(ten(calls)) == []  # once


def test_calls_that_approve_no_one_are_orders_and_page_views_that_trigger_nothing() -> None:
    calls = _Calls("t", monotonic=FakeMonotonic())
    rest = [call for call in ten(calls) if call.body["type"] == "track"]
    assert len(rest) == TRIGGERING_EVERY - 1
    assert {call.body["event"] for call in rest} <= {"Order Completed", "Page Viewed"}
    assert not any(call.triggering for call in rest)
