"""Time as a dependency: code that needs "now" takes a :class:`Clock`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware in UTC."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to: for tests and simulations."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        self._at = at


class ShiftedClock:
    """Another clock moved forward by an offset that only grows: a sandbox's time."""

    def __init__(self, base: Clock, offset: timedelta = timedelta()) -> None:
        if offset < timedelta():
            raise ValueError("a shifted clock is never behind its base")
        self._base = base
        self._offset = offset

    @property
    def offset(self) -> timedelta:
        return self._offset

    def now(self) -> datetime:
        return self._base.now() + self._offset

    def advance(self, by: timedelta) -> None:
        """Move forward by ``by``; ``ValueError`` unless it is longer than zero."""
        if by <= timedelta():
            raise ValueError("the clock only moves forward: give a duration longer than zero")
        self._offset += by
