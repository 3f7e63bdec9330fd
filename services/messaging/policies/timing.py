"""When a message may go out: delay, the step's send window and quiet hours, in the
contact's timezone. Pure.

Timing only ever defers: the result is the earliest moment at or after ``at`` that is
outside quiet hours and inside the send window (if the step has one). A contact without a
known timezone uses the workspace default (``MILEPOST_MESSAGING_DEFAULT_TIMEZONE``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.messaging.playbooks.files import WEEKDAYS, SendWindow

_MAX_MOVES = 16


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local hours with no messages; ``start`` after ``end`` spans midnight (21:00-08:00)."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True, slots=True)
class Timing:
    """When to send, and why it is later than asked (``None``: not deferred)."""

    not_before: datetime
    reason: str | None


def zone(name: str | None, default: str) -> ZoneInfo:
    """The contact's zone; the default when it has none or an unknown one."""
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def earliest_send(
    at: datetime,
    *,
    delay: timedelta,
    timezone: ZoneInfo,
    quiet: QuietHours | None,
    window: SendWindow | None,
) -> Timing:
    """The first moment at or after ``at + delay`` outside ``quiet`` and inside ``window``."""
    wanted = at + delay
    local = wanted.astimezone(timezone)
    reasons: list[str] = ["delay"] if delay > timedelta() else []
    for _ in range(_MAX_MOVES):
        moved = _outside_quiet(local, quiet, timezone)
        if moved is not None:
            local = moved
            reasons.append("quiet hours")
            continue
        if window is not None:
            moved = _inside_window(local, window, timezone)
            if moved is not None:
                local = moved
                reasons.append("send window")
                continue
        break
    when = local.astimezone(at.tzinfo)
    if when <= at:
        return Timing(at, None)
    names = ", ".join(dict.fromkeys(reasons))
    return Timing(when, f"deferred ({names}) to {local:%Y-%m-%d %H:%M} {timezone.key}")


def _outside_quiet(local: datetime, quiet: QuietHours | None, tz: ZoneInfo) -> datetime | None:
    if quiet is None or not quiet.contains(local.time()):
        return None
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)
    return datetime.combine(day, quiet.end, tzinfo=tz)


def _inside_window(local: datetime, window: SendWindow, tz: ZoneInfo) -> datetime | None:
    days: Collection[int] = {WEEKDAYS.index(d) for d in window.days}
    start, end = window.start_time, window.end_time
    if local.weekday() in days and start <= local.time() < end:
        return None
    day = local.date()
    if local.weekday() not in days or local.time() >= end:
        day += timedelta(days=1)
        while day.weekday() not in days:
            day += timedelta(days=1)
    return datetime.combine(day, start, tzinfo=tz)
