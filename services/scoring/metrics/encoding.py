"""A metric store as compact bytes (JSON via orjson) and back, for storage.

Layout, version 1: ``{"v": 1, "d": day, "s": d - since, "u": [user ids], "a": {id: [o, amount,
...]}, "n": {id: [o, [user index, ...], ...]}, "l": {id: epoch}, "f": {id: [value, epoch]}}``
where each ``o`` is ``d`` minus the bucket's day, user ids are written once and referred to by
index, whole amounts are written as integers, and empty parts are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, TypeVar

import orjson

from services.scoring.errors import StoreCorrupt
from services.scoring.metrics.store import Amounts, MetricStore, UserDays

VERSION: Final = 1
T = TypeVar("T")


def encode(store: MetricStore) -> bytes:
    """``store`` as bytes, exactly sized (no spare capacity kept from the encoder)."""
    document: dict[str, Any] = {"v": VERSION}
    if store.day is not None:
        document["d"] = day = store.day
        if store.since is not None:
            document["s"] = day - store.since
        users: dict[str, int] = {}
        if store.amounts:
            document["a"] = {
                key: [part for d, a in buckets for part in (day - d, _compact(a))]
                for key, buckets in store.amounts.items()
            }
        if store.users:
            document["n"] = {
                key: [
                    part
                    for d, ids in buckets
                    for part in (day - d, [users.setdefault(u, len(users)) for u in sorted(ids)])
                ]
                for key, buckets in store.users.items()
            }
            document["u"] = list(users)
    if store.last_seen:
        document["l"] = dict(store.last_seen)
    if store.facts:
        document["f"] = {key: [_compact(v), at] for key, (v, at) in store.facts.items()}
    return bytes(memoryview(orjson.dumps(document)))


def decode(data: bytes) -> MetricStore:
    """The store :func:`encode` wrote; raises :class:`StoreCorrupt` for anything else."""
    try:
        document = orjson.loads(data)
        return _store(document)
    except (orjson.JSONDecodeError, TypeError, ValueError, KeyError, IndexError) as exc:
        raise StoreCorrupt(f"stored metrics do not decode: {exc}") from exc


def _store(document: object) -> MetricStore:
    if not isinstance(document, dict) or document.get("v") != VERSION:
        raise ValueError(f"not a version {VERSION} metric store")
    last_seen = {_text(k): _int(v) for k, v in _map(document.get("l", {})).items()}
    facts = {}
    for key, pair in _map(document.get("f", {})).items():
        number, at = _list(pair)
        facts[_text(key)] = (_float(number), _int(at))
    if "d" not in document:
        return MetricStore(last_seen=last_seen, facts=facts)
    day = _int(document["d"])
    since = day - _int(document["s"]) if "s" in document else None
    ids = [_text(u) for u in _list(document.get("u", []))]
    amounts: dict[str, Amounts] = {}
    for key, flat in _map(document.get("a", {})).items():
        parts = _list(flat)
        amounts[_text(key)] = _ascending(
            (day - _int(o), _float(a)) for o, a in zip(parts[::2], parts[1::2], strict=True)
        )
    users: dict[str, UserDays] = {}
    for key, flat in _map(document.get("n", {})).items():
        parts = _list(flat)
        users[_text(key)] = _ascending(
            (day - _int(o), frozenset(ids[_index(i)] for i in _list(members)))
            for o, members in zip(parts[::2], parts[1::2], strict=True)
        )
    return MetricStore(day, since, amounts, users, last_seen, facts)


def _compact(number: float) -> float | int:
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _ascending(pairs: Iterable[tuple[int, T]]) -> tuple[tuple[int, T], ...]:
    buckets = dict(pairs)
    return tuple(sorted(buckets.items(), key=lambda bucket: bucket[0]))


def _map(value: object) -> dict[str, object]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return value


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _index(value: object) -> int:
    index = _int(value)
    if index < 0:
        raise ValueError(f"user index {index} is negative")
    return index


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)
