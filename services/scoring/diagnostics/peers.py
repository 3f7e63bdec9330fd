"""Which peer distributions an account's values belong to, and how they change when the
account's values or its tier change.

A peer group is the accounts of one growth path in one tier (the whole path when it has no
tiers). The service keeps one :class:`~services.scoring.diagnostics.distribution.PeerDistribution`
per (group, figure) and, per account, the :class:`PeerStanding` it last contributed; when the
account is evaluated again it applies :func:`peer_updates` (old standing to new) and stores
the new standing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from services.scoring.diagnostics.distribution import PeerDistribution


class PeerGroup(msgspec.Struct, frozen=True, gc=False):
    """The accounts of growth path ``path`` in ``tier`` (``None``: the path has no tiers or
    the account has none yet)."""

    path: str
    tier: str | None

    @property
    def label(self) -> str:
        """How a sentence names the group: the tier, or the path's accounts."""
        return self.tier if self.tier is not None else f"the {self.path} accounts"


class PeerStanding(msgspec.Struct, frozen=True, gc=False):
    """What one account contributes: its group and its value of each figure it has."""

    group: PeerGroup
    values: tuple[tuple[str, float], ...]
    """(figure, value), ordered by figure; figures the account has no value of are absent."""

    @classmethod
    def of(
        cls, group: PeerGroup, values: Mapping[str, float | None], figures: Iterable[str]
    ) -> PeerStanding:
        """The standing of an account in ``group`` with snapshot ``values``, for the figures
        diagnostics compare (see ``PathDiagnostics.figures``); unknown or non-finite values
        are left out."""
        kept: dict[str, float] = {}
        for figure in figures:
            value = values.get(figure)
            if value is not None and math.isfinite(float(value)):
                kept[figure] = float(value)
        return cls(group, tuple(sorted(kept.items())))

    def to_json(self) -> dict[str, Any]:
        """A JSON form to keep with the account's state."""
        return {
            "path": self.group.path,
            "tier": self.group.tier,
            "values": dict(self.values),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PeerStanding:
        values = data["values"]
        return cls(
            PeerGroup(str(data["path"]), None if data["tier"] is None else str(data["tier"])),
            tuple(sorted((str(k), float(v)) for k, v in values.items())),
        )


class PeerUpdate(msgspec.Struct, frozen=True, gc=False):
    """Take ``remove`` out of and put ``add`` into the distribution of ``figure`` in
    ``group`` (``None``: nothing)."""

    group: PeerGroup
    figure: str
    remove: float | None
    add: float | None

    def apply(self, distribution: PeerDistribution) -> None:
        distribution.replace(self.remove, self.add)


def peer_updates(old: PeerStanding | None, new: PeerStanding | None) -> tuple[PeerUpdate, ...]:
    """The distribution changes that take an account from standing ``old`` to ``new``
    (``None``: none, as on its first evaluation or when it leaves the path), one per
    (group, figure) that changes, ordered by group then figure."""
    if old is not None and new is not None and old.group == new.group:
        return _moved(old, new)
    before = {(old.group, f): v for f, v in old.values} if old else {}
    after = {(new.group, f): v for f, v in new.values} if new else {}
    updates = []
    for group, figure in sorted(before.keys() | after.keys(), key=_update_order):
        removed, added = before.get((group, figure)), after.get((group, figure))
        if removed != added:
            updates.append(PeerUpdate(group, figure, removed, added))
    return tuple(updates)


def _moved(old: PeerStanding, new: PeerStanding) -> tuple[PeerUpdate, ...]:
    """:func:`peer_updates` within one group (the common case: the account's values
    moved, its tier did not)."""
    if old.values == new.values:
        return ()
    before, after = dict(old.values), dict(new.values)
    return tuple(
        PeerUpdate(new.group, figure, before.get(figure), after.get(figure))
        for figure in sorted(before.keys() | after.keys())
        if before.get(figure) != after.get(figure)
    )


def _update_order(key: tuple[PeerGroup, str]) -> tuple[str, bool, str, str]:
    group, figure = key
    return (group.path, group.tier is not None, group.tier or "", figure)
