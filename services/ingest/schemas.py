"""Ingest's answers on the wire: what was accepted, and per item what was rejected and why."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.ingest.errors import Problem
from services.ingest.service import IngestOutcome, RejectedItem


class ProblemOut(BaseModel):
    field: str = Field(description="The field at fault, e.g. 'batch[3].event' or 'Content-Type'.")
    code: str = Field(description="A stable machine-readable code, e.g. 'too_large', 'missing'.")
    message: str
    limit: int | None = Field(default=None, description="The limit that was crossed, if any.")

    @classmethod
    def from_problem(cls, problem: Problem) -> ProblemOut:
        return cls(
            field=problem.field, code=problem.code, message=problem.message, limit=problem.limit
        )


class RejectedItemOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    index: int = Field(description="Position of the item in the request (0 for single calls).")
    message_id: str | None = Field(default=None, alias="messageId")
    errors: list[ProblemOut]

    @classmethod
    def from_item(cls, item: RejectedItem) -> RejectedItemOut:
        return cls(
            index=item.index,
            message_id=item.message_id,
            errors=[ProblemOut.from_problem(p) for p in item.problems],
        )


class IngestResponse(BaseModel):
    """Answered with 200 once every accepted event is durable on the bus."""

    success: bool = Field(description="True on every 200: the request was processed.")
    accepted: int = Field(description="Events newly published.")
    duplicates: int = Field(description="Events whose messageId was already published.")
    rejected: list[RejectedItemOut] = Field(default_factory=list)

    @classmethod
    def from_outcome(cls, outcome: IngestOutcome) -> IngestResponse:
        return cls(
            success=True,
            accepted=outcome.accepted,
            duplicates=outcome.duplicates,
            rejected=[RejectedItemOut.from_item(item) for item in outcome.rejected],
        )


class ErrorResponse(BaseModel):
    """A refused request. ``code`` and ``message`` repeat the first problem at the top
    level, where Segment's SDKs look for them; ``errors`` lists every problem."""

    success: bool = False
    code: str = Field(description="The first problem's code.")
    message: str = Field(description="Every problem in one line: `field: message`.")
    errors: list[ProblemOut]

    @classmethod
    def of(cls, problems: list[ProblemOut]) -> ErrorResponse:
        return cls(
            code=problems[0].code if problems else "invalid",
            message="; ".join(f"{p.field or 'request'}: {p.message}" for p in problems),
            errors=problems,
        )
