"""Reading a record's JSON payload, or saying in a dead letter's reason why not. Pure.

Consumers read records into frozen msgspec structs (:class:`RecordDecoder`): no pydantic on
the hot path. The contract's pydantic model stays the one schema: a record the struct
refuses is validated by it, so the reason names the fields and their problems as the
model states them."""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec
from pydantic import BaseModel, ValidationError

from shared.bus import ConsumedRecord
from shared.errors import InvalidMessage

S = TypeVar("S", bound=msgspec.Struct)


class RecordDecoder(Generic[S]):
    """Reads a record's value as ``struct``, the reading of the contract ``model`` (a
    :class:`~shared.errors.InvalidMessage`, ``not a valid <name>: <problems>``, to the
    dead-letter topic when it does not decode)."""

    def __init__(self, struct: type[S], model: type[BaseModel], *, name: str) -> None:
        self.decoder = msgspec.json.Decoder(struct, strict=False)
        self.model = model
        self.name = name

    def __call__(self, record: ConsumedRecord) -> S:
        try:
            return self.decoder.decode(record.value)
        except msgspec.DecodeError as exc:
            raise InvalidMessage(f"not a valid {self.name}: {self.problems(record, exc)}") from exc

    def problems(self, record: ConsumedRecord, refused: msgspec.DecodeError) -> str:
        """What the contract's model finds wrong with ``record``; the struct's own finding
        when the model accepts it (a struct must not be stricter than its model)."""
        try:
            self.model.model_validate_json(record.value)
        except ValidationError as exc:
            return validation_problems(exc)
        return str(refused)


def validation_problems(exc: ValidationError) -> str:
    """The first few problems of a payload that does not validate, as ``field: message``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors()[:5]
    )
