"""Reading a record's JSON payload, or saying in a dead letter's reason why not. Pure."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from shared.bus import ConsumedRecord
from shared.errors import InvalidMessage

M = TypeVar("M", bound=BaseModel)


def decode_json(model: type[M], record: ConsumedRecord, *, name: str) -> M:
    """``record``'s value validated as ``model``; :class:`InvalidMessage` (to the
    dead-letter topic), ``not a valid <name>: <problems>``, when it does not validate."""
    try:
        return model.model_validate_json(record.value)
    except ValidationError as exc:
        raise InvalidMessage(f"not a valid {name}: {validation_problems(exc)}") from exc


def validation_problems(exc: ValidationError) -> str:
    """The first few problems of a payload that does not validate, as ``field: message``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors()[:5]
    )
