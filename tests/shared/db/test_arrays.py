"""A column's values as one parameter: the array's text for strings, integers, booleans
and floats (read back exactly by PostgreSQL), JSON as texts, other types as lists."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
from sqlalchemy import JSON, Column, DateTime, Float, Integer, MetaData, String, Table

from shared.db.arrays import array_text, carried_as_text, columns, encoded
from shared.db.types import UtcDateTime

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
TABLE = Table(
    "sample",
    MetaData(),
    Column("name", String(32)),
    Column("count", Integer),
    Column("score", Float),
    Column("detail", JSON),
    Column("seen_at", DateTime(timezone=True)),
    Column("due_at", UtcDateTime()),
)
AWKWARD = ["a", None, "NULL", "null", 'q"uote', "back\\slash", "ü ✓", "", " s ", "{a,b}", "\n\x01"]


def test_values_without_escapes_are_written_in_one_json_call() -> None:
    assert array_text(["a", None, "b c"]) == '{"a",null,"b c"}'
    assert array_text([1, -2, None]) == "{1,-2,null}"
    assert array_text([True, False]) == "{true,false}"
    assert array_text([]) == "{}"


def test_values_json_would_escape_or_lose_are_quoted_one_by_one() -> None:
    assert array_text(['q"uote', None]) == '{"q\\"uote",NULL}'
    assert array_text(["back\\slash"]) == '{"back\\\\slash"}'
    assert array_text([math.nan, 1.5]) == '{"nan","1.5"}'  # orjson would write null
    assert array_text([2**70]) == '{"1180591620717411303424"}'  # beyond orjson's integers


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("text[]", AWKWARD),
        ("text[]", [None]),
        ("bigint[]", [1, -2, None, 2**62, 0]),
        ("boolean[]", [True, False, None]),
        ("float8[]", [0.1, -0.0, 1e-300, 1.7976931348623157e308, None, 3]),
        ("float8[]", [math.inf, -math.inf, 1.5]),
        ("timestamptz[]", [NOW, None, NOW.astimezone(timezone(timedelta(hours=-5)))]),
    ],
)
async def test_postgresql_reads_the_text_back_as_the_values(
    postgres_url: str, kind: str, values: list[object]
) -> None:
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await connection.fetchval(f"select $1::text::{kind}", array_text(values)) == values
    finally:
        await connection.close()


@pytest.mark.postgres
async def test_postgresql_reads_nan_back(postgres_url: str) -> None:
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        (nan,) = await connection.fetchval("select $1::text::float8[]", array_text([math.nan]))
    finally:
        await connection.close()
    assert math.isnan(nan)


def test_rows_become_one_parameter_per_column_each_as_its_type_travels() -> None:
    rows: list[dict[str, object]] = [
        {
            "name": "a",
            "count": 1,
            "score": 0.5,
            "detail": {"k": [1]},
            "seen_at": NOW,
            "due_at": NOW,
        },
        {
            "name": "b",
            "count": None,
            "score": None,
            "detail": None,
            "seen_at": None,
            "due_at": None,
        },
    ]
    assert columns(TABLE, rows) == {
        "given_name": '{"a","b"}',
        "given_count": "{1,null}",
        "given_score": "{0.5,null}",
        "given_detail": ['{"k":[1]}', "null"],
        "given_seen_at": [NOW, None],
        "given_due_at": '{"2026-03-02T09:00:00+00:00",null}',
    }
    assert columns(TABLE, [{"name": "a"}, {"name": "b"}]) == {"given_name": '{"a","b"}'}


def test_only_exact_scalar_types_travel_as_text() -> None:
    assert [carried_as_text(column.type) for column in TABLE.c] == [
        True,
        True,
        True,
        False,
        False,
        True,
    ]


def test_a_utc_datetime_without_a_time_zone_is_refused_as_the_column_type_refuses_it() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        encoded(UtcDateTime(), [NOW, datetime(2026, 3, 2, 9)])
