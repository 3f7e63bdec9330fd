"""Page cursors of lists ordered by (time, id), newest first: ``<ISO time>|<id>``."""

from __future__ import annotations

from datetime import datetime

from services.messaging.errors import MessagingError
from shared.errors import Invalid


class BadCursor(MessagingError, Invalid):
    """A cursor that is not a ``next_cursor`` this API gave."""

    field = "cursor"


def encode_cursor(at: datetime, key: str) -> str:
    return f"{at.isoformat()}|{key}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    at, separator, key = cursor.partition("|")
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        parsed = None
    if not separator or not key or parsed is None or parsed.tzinfo is None:
        raise BadCursor("pass the next_cursor of the previous page")
    return parsed, key
