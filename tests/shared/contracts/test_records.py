"""Each record struct (what consumers decode with msgspec) reads exactly its contract's
pydantic model, the one schema: the same fields in the same order, types, limits and
defaults; and a record the model writes decodes into the struct with the same values."""

from __future__ import annotations

import types
from datetime import UTC, datetime
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
import msgspec
import msgspec.inspect
import orjson
import pytest
from pydantic import AwareDatetime, BaseModel, ValidationError
from pydantic.fields import FieldInfo

from shared.contracts import (
    AccountEvent,
    EventEnvelope,
    EventType,
    RiskLevel,
    ScoreEnvelope,
    ScoreKind,
    SignalReason,
    TriggerEnvelope,
    TriggerKind,
)
from shared.contracts.events import AccountEventRecord, EventRecord
from shared.contracts.scores import ScoreRecord, SignalReasonRecord
from shared.contracts.triggers import TriggerRecord

PAIRS: list[tuple[type[BaseModel], type[msgspec.Struct]]] = [
    (EventEnvelope, EventRecord),
    (AccountEvent, AccountEventRecord),
    (SignalReason, SignalReasonRecord),
    (ScoreEnvelope, ScoreRecord),
    (TriggerEnvelope, TriggerRecord),
]
STRUCT_OF = dict(PAIRS)
AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def as_msgspec(annotation: Any, metadata: list[Any] = []) -> Any:  # noqa: B006
    """The msgspec type that reads what the pydantic ``annotation`` (with its field
    ``metadata``: limits) validates."""
    if annotation is AwareDatetime:
        return Annotated[datetime, msgspec.Meta(tz=True)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return STRUCT_OF[annotation]
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [
            as_msgspec(a, metadata if a is not type(None) else []) for a in get_args(annotation)
        ]
        return Union[tuple(members)]  # noqa: UP007
    if origin is list:
        return list[as_msgspec(get_args(annotation)[0])]  # type: ignore[misc]
    if origin is dict:
        key, value = get_args(annotation)
        return dict[as_msgspec(key), as_msgspec(value)]  # type: ignore[misc]
    limits = {
        name: getattr(m, name)
        for m in metadata
        for name in ("ge", "le", "gt", "lt")
        if isinstance(m, annotated_types.BaseMetadata) and hasattr(m, name)
    }
    return Annotated[annotation, msgspec.Meta(**limits)] if limits else annotation


def default_of(info: FieldInfo) -> Any:
    return msgspec.NODEFAULT if info.is_required() else info.get_default(call_default_factory=True)


@pytest.mark.parametrize(("model", "struct"), PAIRS, ids=[m.__name__ for m, _ in PAIRS])
def test_a_record_struct_has_its_models_fields_types_limits_and_defaults(
    model: type[BaseModel], struct: type[msgspec.Struct]
) -> None:
    assert model.model_config.get("extra") == "forbid"
    assert struct.__struct_config__.forbid_unknown_fields
    assert struct.__struct_config__.frozen
    fields = msgspec.inspect.type_info(struct).fields  # type: ignore[attr-defined]
    assert [f.name for f in fields] == list(model.model_fields)
    for field in fields:
        info = model.model_fields[field.name]
        expected = msgspec.inspect.type_info(as_msgspec(info.annotation, info.metadata))
        assert field.type == expected, field.name
        given = (
            field.default if field.default_factory is msgspec.NODEFAULT else field.default_factory()
        )
        assert given == default_of(info), field.name


def test_the_comparison_sees_a_difference() -> None:
    class Drifted(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
        signal: str
        severity: RiskLevel
        sentence: str
        measure: float
        threshold: float
        figures: dict[str, float | None] = {}

    STRUCT_OF[SignalReason] = Drifted
    try:
        with pytest.raises(AssertionError, match="measure"):
            test_a_record_struct_has_its_models_fields_types_limits_and_defaults(
                SignalReason, Drifted
            )
    finally:
        STRUCT_OF[SignalReason] = SignalReasonRecord


EXAMPLES: list[BaseModel] = [
    EventEnvelope(
        event_id="e1",
        workspace_id="w",
        message_id="m1",
        type=EventType.TRACK,
        event="Order Placed",
        user_id="u",
        properties={"amount": 12.5, "items": [1, 2]},
        context={"groupId": "acme"},
        timestamp=AT,
        sent_at=AT,
        received_at=AT,
        source="segment",
    ),
    ScoreEnvelope(
        score_event_id="s1",
        workspace_id="w",
        account_id="acme",
        kind=ScoreKind.RISK_RAISED,
        health=42.0,
        risk_level=RiskLevel.HIGH,
        signals=["data_export"],
        reasons=[
            SignalReason(
                signal="data_export",
                severity=RiskLevel.HIGH,
                sentence="A large data export",
                measure=None,
                threshold=3.0,
                figures={"rows_7d": 20_700.0, "weekly_average": None},
            )
        ],
        occurred_at=AT,
    ),
    TriggerEnvelope(
        trigger_id="t1",
        workspace_id="w",
        account_id="acme",
        path_id="p",
        path_version=2,
        stage="Activation",
        node="listing",
        kind=TriggerKind.NODE_ENTERED,
        reason="entered",
        occurred_at=AT,
        payload={"due_at": 1},
    ),
]


@pytest.mark.parametrize("envelope", EXAMPLES, ids=[type(e).__name__ for e in EXAMPLES])
def test_a_record_the_model_writes_decodes_with_the_same_values(envelope: BaseModel) -> None:
    struct = STRUCT_OF[type(envelope)]
    decoded = msgspec.json.decode(envelope.model_dump_json(), type=struct)
    assert msgspec.to_builtins(decoded) == envelope.model_dump(mode="json")
    assert type(envelope).model_validate_json(msgspec.json.encode(decoded)) == envelope


def test_an_unknown_field_or_an_out_of_range_value_is_refused_by_both() -> None:
    written = EXAMPLES[2].model_dump(mode="json")
    for wrong in ({**written, "extra": 1}, {**written, "path_version": 0}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(msgspec.json.encode(wrong), type=TriggerRecord)
        with pytest.raises(ValidationError):
            TriggerEnvelope.model_validate(wrong)


def test_a_score_record_writes_the_json_its_envelope_writes() -> None:
    envelope = EXAMPLES[1]
    assert isinstance(envelope, ScoreEnvelope)
    record = msgspec.json.decode(envelope.model_dump_json(), type=ScoreRecord)
    assert orjson.loads(record.to_json()) == orjson.loads(envelope.model_dump_json())
    assert ScoreEnvelope.model_validate_json(record.to_json()) == envelope
