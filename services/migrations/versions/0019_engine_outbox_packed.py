"""The engine's outbox keeps a checkpoint's records of one input partition as one row (a
MessagePack array of [id, topic, key, value, headers] per record, keyed by its first
record's id), stored compressed with LZ4 where PostgreSQL has it: a trigger costs the
database a fraction of a row of its own. Rows already there become packs of one record;
a downgrade unpacks them.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 12:30:00.000000
"""

from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORD_COLUMNS = ("topic", "key", "value", "headers")
Packed = tuple[str, str, bytes, bytes, list[tuple[str, bytes]]]


def _outbox(*names: str) -> sa.TableClause:
    types: dict[str, Any] = {
        "record_id": sa.String(80),
        "partition": sa.Integer(),
        "sequence": sa.Integer(),
        "created_at": sa.DateTime(timezone=True),
        "records": sa.LargeBinary(),
        "topic": sa.String(249),
        "key": sa.LargeBinary(),
        "value": sa.LargeBinary(),
        "headers": sa.JSON(),
    }
    kept = ("record_id", "partition", "sequence", "created_at", *names)
    return sa.table("engine_outbox", *(sa.column(name, types[name]) for name in kept))


def _take_rows(table: sa.TableClause) -> list[dict[str, Any]]:
    """Every row of ``table``, oldest first, deleted."""
    bind = op.get_bind()
    rows = bind.execute(sa.select(table).order_by(table.c.created_at, table.c.sequence))
    taken = [dict(row._mapping) for row in rows]
    bind.execute(sa.delete(table))
    return taken


def upgrade() -> None:
    rows = _take_rows(_outbox(*RECORD_COLUMNS))
    with op.batch_alter_table("engine_outbox", schema=None) as batch_op:
        for name in RECORD_COLUMNS:
            batch_op.drop_column(name)
        batch_op.add_column(sa.Column("records", sa.LargeBinary(), nullable=False))
    if op.get_bind().dialect.name == "postgresql" and _has_lz4():
        op.execute("ALTER TABLE engine_outbox ALTER COLUMN records SET COMPRESSION lz4")
    encode = msgspec.msgpack.Encoder().encode
    for row in rows:
        headers = [(name, text.encode("latin-1")) for name, text in row.pop("headers")]
        record = (row["record_id"], row.pop("topic"), row.pop("key"), row.pop("value"), headers)
        row["records"] = encode([record])
    if rows:
        op.bulk_insert(_outbox("records"), rows)


def _has_lz4() -> bool:
    found = op.get_bind().scalar(
        sa.text(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
    )
    return bool(found)


def downgrade() -> None:
    packs = _take_rows(_outbox("records"))
    with op.batch_alter_table("engine_outbox", schema=None) as batch_op:
        batch_op.drop_column("records")
        batch_op.add_column(sa.Column("topic", sa.String(249), nullable=False))
        batch_op.add_column(sa.Column("key", sa.LargeBinary(), nullable=False))
        batch_op.add_column(sa.Column("value", sa.LargeBinary(), nullable=False))
        batch_op.add_column(sa.Column("headers", sa.JSON(), nullable=False))
    decode = msgspec.msgpack.Decoder(list[Packed]).decode
    rows, places = [], dict[Any, int]()
    for pack in packs:
        for record_id, topic, key, value, headers in decode(pack["records"]):
            place = places[pack["created_at"]] = places.get(pack["created_at"], -1) + 1
            rows.append(
                {
                    "record_id": record_id,
                    "partition": pack["partition"],
                    "sequence": place,
                    "created_at": pack["created_at"],
                    "topic": topic,
                    "key": key,
                    "value": value,
                    "headers": [[name, raw.decode("latin-1")] for name, raw in headers],
                }
            )
    if rows:
        op.bulk_insert(_outbox(*RECORD_COLUMNS), rows)
