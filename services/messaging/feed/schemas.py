"""The feed API's bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.messaging.feed.models import FeedItemRow
from shared.db.ranges import Int32

MAX_MARK = 500


class FeedItemOut(BaseModel):
    seq: int = Field(description="Orders the feed; pass the last one as `cursor`.")
    delivery_id: str
    subject: str
    body: str
    category: str
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def of(cls, row: FeedItemRow) -> FeedItemOut:
        return cls.model_validate(row, from_attributes=True)


class FeedPageOut(BaseModel):
    items: list[FeedItemOut]
    next_cursor: int | None = Field(description="Pass as `cursor` for older items.")
    unread: int = Field(description="The user's unread items in all.")


class MarkReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seqs: list[Int32] | None = Field(default=None, max_length=MAX_MARK)
    up_to: Int32 | None = Field(default=None, ge=0, description="Every item up to this seq.")

    @model_validator(mode="after")
    def one_of(self) -> MarkReadIn:
        if (self.seqs is None) == (self.up_to is None):
            raise ValueError("give either seqs or up_to")
        return self


class MarkedOut(BaseModel):
    marked: int
