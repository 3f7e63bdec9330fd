"""A growth path's tier ladder: the levels, their benefits and the hysteresis that moves an
account between them. The engine places accounts with it, scoring with its own measured
figure; both read the same ladder from the published growth path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Benefit:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class TierLevel:
    id: str
    name: str
    enter_at: float
    exit_below: float
    benefits: tuple[Benefit, ...]


@dataclass(frozen=True, slots=True)
class TierMove:
    """A change of tier: from ``old`` to ``new`` (``None`` is no tier).

    ``threshold`` is the line the value crossed: the ``enter_at`` it reached on a placement or
    promotion, the ``exit_below`` it fell under on a demotion (of the lowest level it left).
    """

    old: TierLevel | None
    new: TierLevel | None
    direction: Literal["placement", "promotion", "demotion"]
    value: float
    threshold: float


@dataclass(frozen=True, slots=True)
class TierLadder:
    """Levels an account climbs and falls on a figure, with hysteresis: promoted when the
    figure reaches a level's ``enter_at``, demoted when it falls below the ``exit_below``."""

    label: str
    levels: tuple[TierLevel, ...]
    """Ascending by ``enter_at``."""

    def place(self, current: str | None, value: float) -> TierLevel | None:
        """The level an account in tier ``current`` (``None``, or an id no level has: no
        tier) belongs in when the tier metric is ``value``, with hysteresis.

        With no tier, the highest level whose ``enter_at`` the value reaches. With one, the
        account is promoted to the highest level above it whose ``enter_at`` it reaches; else
        it keeps its level until the value falls below the level's ``exit_below``, and then
        drops to the highest lower level whose ``exit_below`` it still reaches (or to none).
        """
        chosen = self._position(current, value)[1]
        return None if chosen is None else self.levels[chosen]

    def move(self, current: str | None, value: float) -> TierMove | None:
        """The change :meth:`place` makes, or ``None`` when the account keeps its tier."""
        now, chosen = self._position(current, value)
        if chosen == now:
            return None
        new = self.levels[chosen] if chosen is not None else None
        old = self.levels[now] if now is not None else None
        if now is None:
            assert new is not None  # no tier to no tier is no move
            return TierMove(old, new, "placement", value, new.enter_at)
        if chosen is not None and chosen > now:
            return TierMove(old, new, "promotion", value, self.levels[chosen].enter_at)
        lowest_left = 0 if chosen is None else chosen + 1
        return TierMove(old, new, "demotion", value, self.levels[lowest_left].exit_below)

    def _position(self, current: str | None, value: float) -> tuple[int | None, int | None]:
        """(index of ``current``, index of the level to be in), ``None`` for no tier."""
        ids = [level.id for level in self.levels]
        now = ids.index(current) if current in ids else None
        above = [i for i, level in enumerate(self.levels) if value >= level.enter_at]
        if now is None:
            return now, (above[-1] if above else None)
        if above and above[-1] > now:
            return now, above[-1]
        if value < self.levels[now].exit_below:
            holding = [i for i in range(now) if value >= self.levels[i].exit_below]
            return now, (holding[-1] if holding else None)
        return now, now
