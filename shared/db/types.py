"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, also on SQLite (which stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value
        if value.tzinfo is None:
            raise ValueError("UtcDateTime needs a timezone-aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_column_text(value: Any) -> str:
    """``value`` as the text a JSON column stores, on both databases and in every statement
    (the engine's ``json_serializer`` and the bulk statements): orjson's, with keys that are
    not strings written as strings, as :func:`json.dumps` writes them. A value may hold
    JSON encoded already, as an ``orjson.Fragment``: a row can then be encoded as it is
    built, while its objects are still in the processor's cache."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
