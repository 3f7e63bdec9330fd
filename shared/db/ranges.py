"""Integers that fit the column they are compared with or stored in.

An API parameter or body field typed with one of these is a 422 past its column's range,
never a database error (asyncpg refuses an int past 64 bits, PostgreSQL one past an
INTEGER column's 32). Combine with ``Query``/``Path``/``Field`` for tighter bounds
(``Annotated[Int32 | None, Query(ge=0)]``).
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Interval

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

Int32 = Annotated[int, Interval(ge=-INT32_MAX - 1, le=INT32_MAX)]
"""An INTEGER column's value (SQLAlchemy ``Integer``)."""
Int64 = Annotated[int, Interval(ge=-INT64_MAX - 1, le=INT64_MAX)]
"""A BIGINT column's value (SQLAlchemy ``BigInteger``)."""
