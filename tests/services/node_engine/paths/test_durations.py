"""ISO 8601 durations as written in growth paths (due dates, escalations, windows)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P3D", timedelta(days=3)),
        ("PT12H", timedelta(hours=12)),
        ("P1W", timedelta(days=7)),
        ("P1M", timedelta(days=30)),
        ("P1Y", timedelta(days=365)),
        ("P1DT2H30M15S", timedelta(days=1, hours=2, minutes=30, seconds=15)),
        ("PT90M", timedelta(minutes=90)),
        ("P0D", timedelta(0)),
        (" p2d ", timedelta(days=2)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "P1DT", "PT1", "3D", "P1.5D", "-P1D", "P1H", "1 day", "P1D2"]
)
def test_parse_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601 duration such as P3D"):
        parse_duration(text)


def test_parse_refuses_what_is_not_text() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_duration(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=3), "P3D"),
        (timedelta(hours=12), "PT12H"),
        (timedelta(days=1, hours=2, minutes=30, seconds=15), "P1DT2H30M15S"),
        (timedelta(days=14), "P14D"),
        (timedelta(seconds=59), "PT59S"),
        (timedelta(0), "P0D"),
    ],
)
def test_format_is_the_shortest_form_and_parses_back(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value
