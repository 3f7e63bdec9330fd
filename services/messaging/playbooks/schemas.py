"""The messaging API's request and response bodies for playbooks and their versions. The
file model is in :mod:`services.messaging.playbooks.files`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.messaging.playbooks.files import PlaybookFile


class PlaybookOut(BaseModel):
    workspace: str
    playbook_id: str
    name: str
    current_version: int
    updated_at: datetime


class PlaybookPage(BaseModel):
    items: list[PlaybookOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class PlaybookVersionOut(BaseModel):
    playbook_id: str
    version: int
    name: str
    source_name: str
    digest: str
    published_at: datetime
    published_by: str = Field(
        description="Who published it: the admin token's label, or `operator` (the "
        "configured admin token, the CLI)."
    )


class PlaybookDetailOut(PlaybookOut):
    versions: list[PlaybookVersionOut]


class PlaybookCounts(BaseModel):
    rules: int
    steps: int
    templates: list[str]

    @classmethod
    def of(cls, playbook: PlaybookFile) -> PlaybookCounts:
        return cls(
            rules=len(playbook.rules),
            steps=sum(len(rule.steps) for rule in playbook.rules),
            templates=sorted(playbook.templates),
        )


class PlaybookVersionDetailOut(PlaybookVersionOut):
    current: bool
    source: str
    counts: PlaybookCounts


class PlaybookValidOut(BaseModel):
    playbook_id: str
    counts: PlaybookCounts
