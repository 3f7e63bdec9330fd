"""A record's origin: stamped from the input record it was made from (replacing one the
source carried), read back as its origin partition and (offset, index); a missing or
malformed header is no origin."""

from __future__ import annotations

import pytest

from shared.bus import ConsumedRecord
from shared.consuming.origins import ORIGIN_HEADER, origin_header, origin_of, with_origin


def record(headers: tuple[tuple[str, bytes], ...] = (), offset: int = 41) -> ConsumedRecord:
    return ConsumedRecord("milepost.events", 3, offset, b"k", b"{}", headers, 0)


def test_a_record_made_from_another_names_it_as_its_origin() -> None:
    source = record(offset=41)
    made = record(headers=with_origin(source.headers, source, index=2))
    assert made.headers == ((ORIGIN_HEADER, b"milepost.events:3:41:2"),)
    assert origin_of(made) == ("milepost.events:3", (41, 2))


def test_the_origin_replaces_one_the_source_carried_and_keeps_the_rest() -> None:
    source = record(headers=(("traceparent", b"00-ab"), origin_header(record(offset=1))))
    assert with_origin(source.headers, source) == (
        ("traceparent", b"00-ab"),
        (ORIGIN_HEADER, b"milepost.events:3:41:0"),
    )


@pytest.mark.parametrize(
    "value", [b"", b"41:0", b"milepost.events:3:x:0", b"milepost.events:3:41:", b":41:0"]
)
def test_a_malformed_origin_is_no_origin(value: bytes) -> None:
    assert origin_of(record(headers=((ORIGIN_HEADER, value),))) is None


def test_a_record_without_the_header_has_no_origin() -> None:
    assert origin_of(record(headers=(("traceparent", b"00-ab"),))) is None
