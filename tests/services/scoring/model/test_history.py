"""Events grouped by account, as metrics see them, with subscription status and churn."""

from __future__ import annotations

from services.scoring.model.history import history_of
from tests.services.scoring.model.events import WORKSPACE, crm, envelope, joined, utc


def test_events_are_attributed_with_roles_and_facts() -> None:
    history = history_of(
        [
            joined(utc(2025, 1, 1), "ann", "admin"),
            crm(utc(2025, 1, 1, 11), "contract.signed", seats=8, contract_id="c1"),
            envelope(utc(2025, 1, 2), "Logged In", account=None),  # ann's account is known
            envelope(utc(2025, 1, 3), "Logged In", account=None, user="stranger"),
        ]
    )
    assert history.unattributed == 1
    assert history.end == int(utc(2025, 1, 3).timestamp())
    account = history.accounts[(WORKSPACE, "acme")]
    assert [e.name for e in account.events] == [
        "group",
        "milepost.crm.contract.signed",
        "Logged In",
    ]
    assert account.events[2].actor_roles == frozenset({"admin"})
    assert account.events[1].facts["crm.seats"] == 8
    assert account.first_at == int(utc(2025, 1, 1).timestamp())


def test_cancellation_is_churn_and_renewal_reactivates() -> None:
    history = history_of(
        [
            envelope(utc(2025, 1, 1), "Logged In"),
            crm(
                utc(2025, 3, 1),
                "subscription.cancelled",
                subscription_id="s",
                effective_on="2025-04-01",
            ),
            crm(
                utc(2025, 3, 5),
                "subscription.cancelled",
                subscription_id="s",
                effective_on="2025-04-01",
            ),
            crm(
                utc(2025, 5, 1),
                "subscription.renewed",
                subscription_id="s",
                renewed_until="2026-05-01",
            ),
            crm(
                utc(2025, 8, 1),
                "subscription.cancelled",
                subscription_id="s",
                effective_on="2025-09-01",
            ),
        ]
    )
    account = history.accounts[(WORKSPACE, "acme")]
    # a repeated cancellation is not a second churn; the time is the record's, not effective_on
    assert account.churned_at == (
        int(utc(2025, 3, 1).timestamp()),
        int(utc(2025, 8, 1).timestamp()),
    )
    assert not account.cancelled_at(int(utc(2025, 2, 28).timestamp()))
    assert account.cancelled_at(int(utc(2025, 3, 1).timestamp()))
    assert account.cancelled_at(int(utc(2025, 4, 30).timestamp()))
    assert not account.cancelled_at(int(utc(2025, 6, 1).timestamp()))
    assert account.cancelled_at(int(utc(2025, 9, 1).timestamp()))
