"""An account's facts, folded from what its events and scores state, within a bound. Pure.

Facts (``crm.*``, ``account.*``, ``score.*``) accumulate per account whatever its
enrolment: a CRM account record sent before the deal that enrols the account is known when
it enrols. Each account keeps at most :data:`MAX_FACTS` facts of at most
:data:`MAX_FACT_BYTES` each (name and JSON value together) and :data:`MAX_FACTS_BYTES` in
all. A later value replaces the earlier one; a new fact beyond the bound is not kept (the
facts already kept stay); a value too large to keep removes the fact (missing, never stale).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

MAX_FACTS = 128
MAX_FACT_BYTES = 1024
MAX_FACTS_BYTES = 16 * 1024


def fact_size(name: str, value: Any) -> int:
    """Bytes of a fact: its name in UTF-8 and its value as JSON."""
    try:
        return len(name.encode()) + len(orjson.dumps(value))
    except TypeError:
        return MAX_FACT_BYTES + 1


def fold_facts(known: Mapping[str, Any], stated: Mapping[str, Any]) -> dict[str, Any]:
    """``known`` with ``stated`` folded in, within the bound (see the module docstring)."""
    facts = dict(known)
    if not stated:
        return facts
    sizes = [(name, value, fact_size(name, value)) for name, value in stated.items()]
    total = _total_bound(facts, sum(size for _, _, size in sizes))
    for name, value, size in sizes:
        if name in facts:
            total -= fact_size(name, facts.pop(name))
        if size <= MAX_FACT_BYTES and len(facts) < MAX_FACTS and total + size <= MAX_FACTS_BYTES:
            facts[name] = value
            total += size
    return facts


def _total_bound(facts: Mapping[str, Any], adding: int) -> int:
    """The bytes of ``facts`` by :func:`fact_size`, or, when the facts' JSON text (never
    shorter than that sum) leaves room for ``adding`` more bytes, that text's length: then
    every stated fact passes the byte bound either way, and the known facts are not sized
    one by one."""
    try:
        bound = len(orjson.dumps(facts))
    except TypeError:
        bound = MAX_FACTS_BYTES + 1
    if bound + adding <= MAX_FACTS_BYTES:
        return bound
    return sum(fact_size(name, value) for name, value in facts.items())


def scored_facts(values: Mapping[str, Any]) -> dict[str, Any]:
    """A score update's values as the ``score.*`` facts conditions read."""
    return {f"score.{key}": value for key, value in values.items()}
