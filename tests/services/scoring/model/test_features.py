"""Features at monthly snapshots from hand-made events, and their labels."""

from __future__ import annotations

import pytest

from services.scoring.definitions import MetricDefinitions, load_metrics
from services.scoring.model.features import (
    TREND_CAP,
    build_dataset,
    feature_names,
    label,
    month_starts,
)
from services.scoring.model.history import History, history_of
from tests.services.scoring.model.events import WORKSPACE, crm, envelope, joined, utc

TEXT = """\
metrics:
  - id: logins
    name: Logins
    kind: count
    event: Logged In
    windows: [P7D, P28D]
    north_star: true
  - id: active_users
    name: Active users
    kind: distinct_users
    event: Logged In
    windows: [P28D]
  - id: revenue
    name: Revenue
    kind: sum
    event: Order Completed
    property: amount
    windows: [P28D]
  - id: paid_seats
    name: Paid seats
    kind: fact
    fact: crm.seats
  - id: admin_last_seen
    name: Days since an admin was active
    kind: last_seen
    event: Logged In
    role: admin
"""
DAY = 86400


@pytest.fixture(scope="module")
def definitions() -> MetricDefinitions:
    return load_metrics("metrics.yaml", text=TEXT)


@pytest.fixture(scope="module")
def history() -> History:
    """acme signs on 10 January, is active in late January, churns on 15 March; beta keeps
    sending events until 10 June."""
    acme = [
        joined(utc(2025, 1, 10), "ann", "admin"),
        joined(utc(2025, 1, 10), "bob", "end_user"),
        crm(utc(2025, 1, 10), "contract.signed", contract_id="c", seats=5),
        envelope(utc(2025, 1, 20), "Logged In", user="ann"),
        *(envelope(utc(2025, 1, day), "Logged In", user="bob") for day in range(25, 32)),
        envelope(utc(2025, 2, 1, 0), "Logged In", user="bob"),  # on the snapshot instant
        envelope(utc(2025, 1, 28), "Order Completed", user="bob", properties={"amount": 40}),
        envelope(utc(2025, 1, 29), "Order Completed", user="bob", properties={"amount": "lots"}),
        crm(
            utc(2025, 3, 15),
            "subscription.cancelled",
            subscription_id="s",
            effective_on="2025-04-30",
        ),
    ]
    beta = [
        envelope(utc(2025, 1, 15), "Logged In", account="beta", user="cy"),
        envelope(utc(2025, 6, 10), "Logged In", account="beta", user="cy"),
    ]
    return history_of(sorted([*acme, *beta], key=lambda e: e.timestamp))


def test_feature_names_follow_the_definitions(definitions: MetricDefinitions) -> None:
    assert feature_names(definitions) == (
        "logins.P7D",
        "logins.P28D",
        "logins.trend",
        "active_users.P28D",
        "revenue.P28D",
        "paid_seats",
        "admin_last_seen",
        "tenure_days",
    )


def test_month_starts() -> None:
    starts = month_starts(int(utc(2024, 11, 30).timestamp()), int(utc(2025, 2, 1, 0).timestamp()))
    assert starts == [
        int(utc(y, m, 1, 0).timestamp()) for y, m in ((2024, 12), (2025, 1), (2025, 2))
    ]
    assert (
        month_starts(int(utc(2025, 1, 1, 0).timestamp()), int(utc(2025, 1, 31).timestamp())) == []
    )


def test_snapshots_read_the_metrics_of_the_events_before_them(
    history: History, definitions: MetricDefinitions
) -> None:
    dataset = build_dataset(history, definitions, horizon_days=30)
    acme = [s for s in dataset.snapshots if s.account == (WORKSPACE, "acme")]
    assert [s.at for s in acme] == [int(utc(2025, m, 1, 0).timestamp()) for m in (2, 3)]
    february, march = (dict(zip(dataset.features, s.values, strict=True)) for s in acme)
    # 26-31 January: bob's 6 logins; his login at midnight on 1 February is not before it
    assert february["logins.P7D"] == 6
    assert february["logins.P28D"] == 8  # ann on the 20th, bob from the 25th
    # this week over the 3 weeks since signing (2, 0, 0 logins): 9, capped
    assert february["logins.trend"] == TREND_CAP
    assert february["active_users.P28D"] == 2
    assert february["revenue.P28D"] == 40  # the "lots" order is skipped and counted
    assert february["paid_seats"] == 5
    assert february["admin_last_seen"] == pytest.approx(11 + 14 / 24)
    assert february["tenure_days"] == pytest.approx(21 + 14 / 24)
    assert march["logins.P7D"] == 0
    assert march["logins.trend"] == 0  # nothing this week against 7 logins four weeks ago
    assert march["admin_last_seen"] == pytest.approx(39 + 14 / 24)
    assert dataset.invalid_events == 1


def test_labels_censoring_and_cancelled_accounts(
    history: History, definitions: MetricDefinitions
) -> None:
    dataset = build_dataset(history, definitions, horizon_days=30)
    labels = {(s.account[1], s.at): s.label for s in dataset.snapshots}
    month = {m: int(utc(2025, m, 1, 0).timestamp()) for m in range(2, 7)}
    assert labels == {
        ("acme", month[2]): False,  # the cancellation on 15 March is 42 days later
        ("acme", month[3]): True,
        ("beta", month[2]): False,
        ("beta", month[3]): False,
        ("beta", month[4]): False,
        ("beta", month[5]): False,  # 31 May + 30 days is before the last event (10 June)
    }
    # beta's June snapshot cannot be labelled yet; acme is not snapshotted once cancelled
    assert dataset.censored == 1
    assert dataset.accounts == 2
    assert [s.at for s in dataset.snapshots] == sorted(s.at for s in dataset.snapshots)


def test_label_window_edges(history: History) -> None:
    acme = history.accounts[(WORKSPACE, "acme")]
    churn = acme.churned_at[0]
    end = history.end
    assert label(acme, churn - 30 * DAY, horizon_days=30, end=end) is True
    assert label(acme, churn - 30 * DAY - 1, horizon_days=30, end=end) is False
    beta = history.accounts[(WORKSPACE, "beta")]
    assert label(beta, end - 30 * DAY, horizon_days=30, end=end) is False
    assert label(beta, end - 30 * DAY + 1, horizon_days=30, end=end) is None


def test_horizon_must_be_positive(history: History, definitions: MetricDefinitions) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        build_dataset(history, definitions, horizon_days=0)
