"""Quiet hours and send windows defer to the next allowed moment in the contact's
timezone; they never drop."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.messaging.playbooks.files import SendWindow
from services.messaging.policies.timing import QuietHours, earliest_send, zone

QUIET = QuietHours(time(21), time(8))
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_outside_quiet_hours_a_message_goes_now() -> None:
    at = datetime(2026, 3, 2, 2, tzinfo=UTC)  # 10:00 in Shanghai
    timing = earliest_send(at, delay=timedelta(), timezone=SHANGHAI, quiet=QUIET, window=None)
    assert (timing.not_before, timing.reason) == (at, None)


def test_a_message_in_quiet_hours_is_deferred_to_their_end_in_the_contacts_zone() -> None:
    at = datetime(2026, 3, 2, 14, tzinfo=UTC)  # 22:00 in Shanghai
    timing = earliest_send(at, delay=timedelta(), timezone=SHANGHAI, quiet=QUIET, window=None)
    assert timing.not_before == datetime(2026, 3, 3, 8, tzinfo=SHANGHAI)
    assert timing.reason == "deferred (quiet hours) to 2026-03-03 08:00 Asia/Shanghai"
    after_midnight = datetime(2026, 3, 2, 18, tzinfo=UTC)  # 02:00 in Shanghai, next day
    assert earliest_send(
        after_midnight, delay=timedelta(), timezone=SHANGHAI, quiet=QUIET, window=None
    ).not_before == datetime(2026, 3, 3, 8, tzinfo=SHANGHAI)


def test_the_same_moment_is_quiet_for_one_contact_and_not_for_another() -> None:
    at = datetime(2026, 3, 2, 14, tzinfo=UTC)  # 22:00 Shanghai, 14:00 London
    london = earliest_send(
        at, delay=timedelta(), timezone=ZoneInfo("Europe/London"), quiet=QUIET, window=None
    )
    assert london.not_before == at


def test_a_send_window_defers_to_the_next_working_day() -> None:
    window = SendWindow(start="09:00", end="18:00", days=["mon", "tue", "wed", "thu", "fri"])
    friday_evening = datetime(2026, 3, 6, 11, tzinfo=UTC)  # Friday 19:00 in Shanghai
    timing = earliest_send(
        friday_evening, delay=timedelta(), timezone=SHANGHAI, quiet=QUIET, window=window
    )
    assert timing.not_before == datetime(2026, 3, 9, 9, tzinfo=SHANGHAI)  # Monday 09:00
    assert timing.reason is not None
    assert "send window" in timing.reason


def test_a_delay_counts_from_the_trigger_and_is_then_timed() -> None:
    at = datetime(2026, 3, 2, 2, tzinfo=UTC)  # 10:00 Shanghai; +12h = 22:00, quiet
    timing = earliest_send(
        at, delay=timedelta(hours=12), timezone=SHANGHAI, quiet=QUIET, window=None
    )
    assert timing.not_before == datetime(2026, 3, 3, 8, tzinfo=SHANGHAI)
    assert timing.reason is not None
    assert timing.reason.startswith("deferred (delay, quiet hours)")


def test_no_quiet_hours_and_no_window_never_defer() -> None:
    at = datetime(2026, 3, 2, 14, tzinfo=UTC)
    assert (
        earliest_send(at, delay=timedelta(), timezone=SHANGHAI, quiet=None, window=None).not_before
        == at
    )
    assert (
        earliest_send(
            at,
            delay=timedelta(),
            timezone=SHANGHAI,
            quiet=QuietHours(time(8), time(8)),
            window=None,
        ).reason
        is None
    )


def test_an_unknown_zone_falls_back_to_the_default() -> None:
    assert zone("Mars/Olympus", "Asia/Shanghai") == SHANGHAI
    assert zone(None, "") == ZoneInfo("UTC")
