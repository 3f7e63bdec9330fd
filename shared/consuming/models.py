"""What every fenced consumer group keeps (one table each, keyed by group): applied
offsets and the event ids seen in the deduplication window; and the columns of an outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class AppliedOffsetRow(Base):
    """The next offset to apply per input partition, written in the same transaction as
    the state it produced: records below it are already in the state and are skipped. With
    it, in the same fenced statement, the partition's origin marks."""

    __tablename__ = "engine_applied_offsets"

    consumer_group: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(249), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    origins: Mapped[dict[str, list[int]] | None] = mapped_column(
        JSON,
        doc="Per origin partition, the (offset, index) of the last record applied that came "
        "with an origin (:mod:`shared.consuming.origins`): its copies are skipped.",
    )


class SeenEventRow(Base):
    """An event id a consumer group applied at one stage (the topic it came in on), kept
    for the deduplication window: a copy of it at that stage, at any offset, is skipped."""

    __tablename__ = "consumer_seen_events"
    __table_args__ = (
        # Pruning reads the oldest rows by time. Rows come in time order, so on PostgreSQL a
        # block-range (BRIN) index finds them, at next to no cost per insert; a B-tree
        # took an entry for every event applied.
        Index("ix_consumer_seen_events_seen_at", "seen_at", postgresql_using="brin"),
    )

    consumer_group: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """Before the stage in the key: a batch looks its ids up by group and event id."""
    stage: Mapped[str] = mapped_column(String(249), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime())


class _OutboxRowColumns:
    """What every outbox row has: its id, owning input partition, place and time."""

    record_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, index=True, doc="The owning input partition.")
    sequence: Mapped[int] = mapped_column(Integer, doc="Its place in its checkpoint.")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class OutboxColumns(_OutboxRowColumns):
    """The columns of a stage's outbox table (a model is ``class XOutboxRow(OutboxColumns,
    Base)`` with its ``__tablename__``): records durable with their checkpoint but not yet
    acknowledged by the bus, one row each, in their checkpoint's order. An id already
    stored is kept (a stage whose records can repeat an id)."""

    topic: Mapped[str] = mapped_column(String(249))
    key: Mapped[bytes] = mapped_column(LargeBinary)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[list[list[str]]] = mapped_column(
        JSON, doc="The record's headers as [name, value] pairs, values decoded as Latin-1."
    )


class PackedOutboxColumns(_OutboxRowColumns):
    """The columns of the outbox of a stage whose record ids are each made once, by the
    checkpoint that applies its cause (which commits the cause's sighting and offset with
    them): a checkpoint's records of one input partition are one row, keyed by its first
    record's id (an id stored twice fails the checkpoint), appended with ``COPY``. A record
    costs the database a fraction of a row of its own (:mod:`shared.consuming.outbox`)."""

    records: Mapped[bytes] = mapped_column(
        LargeBinary, doc="MessagePack: an array of [id, topic, key, value, headers] per record."
    )
