"""ISO 8601 durations as operators write them in definition files (``P3D``, ``PT12H``, ``P1W``).

Years and months have no fixed length; they count as 365 and 30 days, which is what an
operator means by "P1M" in a due date or a window.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_SECONDS = {
    "years": 365 * 86400,
    "months": 30 * 86400,
    "weeks": 7 * 86400,
    "days": 86400,
    "hours": 3600,
    "minutes": 60,
    "seconds": 1,
}


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration; raise ``ValueError`` naming the expected form."""
    match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
    if match is None:
        raise ValueError("expected an ISO 8601 duration such as P3D or PT12H")
    seconds = sum(int(value) * _SECONDS[unit] for unit, value in match.groupdict().items() if value)
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest ISO 8601 form of ``value`` in days, hours, minutes and seconds."""
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days or not time else "") + (f"T{time}" if time else "")
