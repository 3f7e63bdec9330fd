"""Deduplication on a record's origin: where in its publisher's input it was made.

A stage that publishes one record per input record it applies (the attribution stage)
stamps each with the header :data:`ORIGIN_HEADER`: the input record's topic, partition and
offset, and the record's index among those made from it. A stage publishes an input
partition's records in input order (its checkpoints publish in turn, and a partition's next
owner publishes what the last one left before anything of its own), so on any partition of
the topic it writes, the origins of one input partition only grow, but for copies: a record
published again (a crash between the publish and the outbox's deletion) carries its
origin, no greater than the last one seen.

A reader therefore keeps, per input partition it owns and per origin partition, the last
origin it applied (its *mark*, stored with the applied offset in the same fenced
statement) and drops a record at or below the mark: exactly-once with no row per event. A
record without the header is deduplicated on its event id (:mod:`.seen`). Pure."""

from __future__ import annotations

from collections.abc import Mapping

from shared.bus import ConsumedRecord

ORIGIN_HEADER = "milepost-origin"
"""``<topic>:<partition>:<offset>:<index>`` of the input record a record was made from."""

Position = tuple[int, int]
"""An origin's (offset, index) in its input partition; later origins compare greater."""
Marks = Mapping[str, Position]
"""Per origin partition (``<topic>:<partition>``): the last origin applied."""


def origin_header(record: ConsumedRecord, index: int = 0) -> tuple[str, bytes]:
    """The header naming ``record`` (at ``index`` among the records made from it) as the
    origin of a record made from it."""
    return ORIGIN_HEADER, f"{record.topic}:{record.partition}:{record.offset}:{index}".encode()


def with_origin(
    headers: tuple[tuple[str, bytes], ...], record: ConsumedRecord, index: int = 0
) -> tuple[tuple[str, bytes], ...]:
    """``headers`` (a source's, carried onward) with the origin of ``record`` in place of
    any they held."""
    kept = tuple(header for header in headers if header[0] != ORIGIN_HEADER)
    return (*kept, origin_header(record, index))


def origin_of(record: ConsumedRecord) -> tuple[str, Position] | None:
    """``record``'s origin partition and position; ``None`` without a well-formed header."""
    for name, value in record.headers:
        if name == ORIGIN_HEADER:
            source, _, rest = value.decode("latin-1").rpartition(":")
            source, _, offset = source.rpartition(":")
            if ":" not in source or not offset.isdigit() or not rest.isdigit():
                return None
            return source, (int(offset), int(rest))
    return None
