"""A metric store as compact bytes and back."""

from __future__ import annotations

import tracemalloc

import orjson
import pytest

from services.scoring.definitions import MetricEvent, Window, load_metrics
from services.scoring.errors import StoreCorrupt
from services.scoring.metrics import DAY, MetricStore, decode, encode, fold, value

TEXT = """\
metrics:
  - id: logins
    name: Logins
    kind: count
    event: Logged In
    windows: [P90D]
    north_star: true
  - id: gmv
    name: GMV
    kind: sum
    event: Order Completed
    property: amount
    windows: [P28D]
  - id: active_users
    name: Active users
    kind: distinct_users
    event: Logged In
    windows: [P90D]
  - id: seats
    name: Seats
    kind: fact
    fact: crm.seats
  - id: seen
    name: Seen
    kind: last_seen
    event: Logged In
"""
DEFINITIONS = load_metrics("metrics.yaml", text=TEXT)
TODAY = 20_000
NOW = TODAY * DAY + 3600


def busy_store(days: int = 90, users: int = 20) -> MetricStore:
    store = MetricStore()
    for day in range(days):
        at = (TODAY - day) * DAY + 60
        for n in range(0, users, 3 if day % 2 else 1):
            store = fold(store, MetricEvent("Logged In", at, f"user-{n:04d}"), DEFINITIONS, now=NOW)
        event = MetricEvent("Order Completed", at, properties={"amount": 12.5 * day})
        store = fold(store, event, DEFINITIONS, now=NOW)
    stated = MetricEvent("signed", TODAY * DAY - 40 * DAY, facts={"crm.seats": 25})
    return fold(store, stated, DEFINITIONS, now=NOW)


def test_a_store_comes_back_as_it_was() -> None:
    store = busy_store()
    back = decode(encode(store))
    assert back == store
    for metric, window in [
        ("logins", Window.P90D),
        ("gmv", Window.P28D),
        ("active_users", Window.P90D),
    ]:
        assert value(back, DEFINITIONS, metric, window, now=NOW) == value(
            store, DEFINITIONS, metric, window, now=NOW
        )
    assert value(back, DEFINITIONS, "seats", None, now=NOW) == 25.0


@pytest.mark.parametrize(
    "store",
    [
        MetricStore(),
        MetricStore(last_seen={"seen": 5}, facts={"seats": (2.5, 7)}),
        MetricStore(day=TODAY, since=TODAY - 3, amounts={"gmv": ((TODAY - 3, 0.1), (TODAY, -2.0))}),
    ],
)
def test_small_and_empty_stores_come_back(store: MetricStore) -> None:
    assert decode(encode(store)) == store


def test_the_encoding_is_compact_and_holds_no_more_memory_than_its_size() -> None:
    store = busy_store()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        copies = [encode(store) for _ in range(50)]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    data = copies[0]
    assert held / len(copies) < len(data) + 200
    assert data.count(b'"user-0000"') == 1  # each user id written once
    document = orjson.loads(data)
    assert document["a"]["logins"][-4:] == [1, 7, 0, 20]  # day offsets, whole numbers as integers
    assert len(data) < 7000


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"v": 2}',
        b'{"v": 1, "d": 20000, "a": {"logins": [0]}}',
        b'{"v": 1, "d": 20000, "a": {"logins": [0, "three"]}}',
        b'{"v": 1, "d": 20000, "u": ["a"], "n": {"users": [0, [1]]}}',
        b'{"v": 1, "d": 20000, "u": ["a"], "n": {"users": [0, [-1]]}}',
        b'{"v": 1, "l": {"seen": true}}',
        b'{"v": 1, "f": {"seats": [1]}}',
    ],
)
def test_bytes_that_are_not_a_store_are_refused(data: bytes) -> None:
    with pytest.raises(StoreCorrupt, match="do not decode"):
        decode(data)
