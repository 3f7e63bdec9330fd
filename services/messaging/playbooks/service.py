"""Playbook versions: validate, publish, list and show, and the catalog the trigger worker
runs.

A published version is immutable. Publishing validates the file (a
:class:`~shared.definitions.DefinitionError` names file, line and field), refuses content
identical to the current version and makes version N+1 current; the trigger worker picks
it up within ``MILEPOST_MESSAGING_CATALOG_REFRESH_SECONDS``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.definitions import MAX_PAGE as MAX_PAGE
from services.definitions import KeyedDefinitions, publish_version
from services.messaging.errors import PlaybookNotFound, PlaybookUnchanged
from services.messaging.playbooks import repository
from services.messaging.playbooks.files import PlaybookFile, PublishedPlaybook, Step
from services.messaging.playbooks.models import PlaybookRow, PlaybookVersionRow
from shared.clock import Clock
from shared.definitions import DefinitionError, definition_digest, load_definition
from shared.tenancy.admin_tokens import OPERATOR

logger = logging.getLogger(__name__)

REFERENCE_PLAYBOOKS = Path(__file__).parent / "reference"
"""The playbooks shipped for the two reference growth paths (docs/messaging.md)."""


@dataclass(frozen=True, slots=True)
class VersionInfo:
    playbook_id: str
    version: int
    name: str
    source_name: str
    digest: str
    published_at: datetime
    published_by: str


@dataclass(frozen=True, slots=True)
class PlaybookInfo:
    workspace_id: str
    playbook_id: str
    updated_at: datetime
    current: VersionInfo


@dataclass(frozen=True, slots=True)
class VersionDetail:
    info: VersionInfo
    source: str
    playbook: PlaybookFile
    is_current: bool


def read_playbook(source_name: str, text: str) -> PlaybookFile:
    """Validate a playbook file; raises :class:`DefinitionError` naming line and field."""
    return load_definition(source_name, PlaybookFile, text=text, what="the playbook")


async def publish(
    session: AsyncSession,
    workspace_id: str,
    source_name: str,
    text: str,
    *,
    published_by: str = OPERATOR,
    clock: Clock,
) -> VersionInfo:
    """Create version N+1 of the file's playbook, published by ``published_by``, and make
    it current.

    Raises :class:`DefinitionError` for an invalid file and :class:`PlaybookUnchanged` for
    content identical to the current version."""
    file = read_playbook(source_name, text)
    digest = definition_digest(text, source=source_name)
    version_row = await publish_version(
        session,
        _PLAYBOOKS.rows(workspace_id, file.id),
        digest,
        new_head=lambda number, now: PlaybookRow(
            workspace_id=workspace_id, playbook_id=file.id, current_version=number, updated_at=now
        ),
        new_version=lambda number, now: PlaybookVersionRow(
            workspace_id=workspace_id,
            playbook_id=file.id,
            version=number,
            name=file.name,
            source=text,
            source_name=source_name,
            digest=digest,
            published_at=now,
        ),
        unchanged=PlaybookUnchanged,
        version_name=lambda number: f"{file.id} v{number}",
        published_by=published_by,
        clock=clock,
    )
    return _info(version_row)


async def list_playbooks(
    session: AsyncSession, workspace_id: str, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[PlaybookInfo], str | None]:
    """A page of the workspace's playbooks by id, and the cursor of the next page (or None)."""
    rows, next_cursor = await _PLAYBOOKS.page(session, workspace_id, cursor=cursor, limit=limit)
    return [_playbook_info(row, current) for row, current in rows], next_cursor


async def get_playbook(
    session: AsyncSession, workspace_id: str, playbook_id: str
) -> tuple[PlaybookInfo, tuple[VersionInfo, ...]]:
    """The playbook with its current version, and every version, oldest first."""
    row, current, versions = await _PLAYBOOKS.history(session, workspace_id, playbook_id)
    return _playbook_info(row, current), tuple(_info(v) for v in versions)


async def show(
    session: AsyncSession, workspace_id: str, playbook_id: str, version: int | None = None
) -> VersionDetail:
    """One version (default: the current one) with its source and validated form."""
    row, found = await _PLAYBOOKS.version(session, workspace_id, playbook_id, version)
    return VersionDetail(
        _info(found),
        found.source,
        read_playbook(f"{playbook_id} v{found.version}", found.source),
        is_current=found.version == row.current_version,
    )


_PARSED: dict[str, PlaybookFile] = {}


def _parsed(row: PlaybookVersionRow) -> PlaybookFile:
    """The stored version, validated once per content; raises :class:`DefinitionError`."""
    parsed = _PARSED.get(row.digest)
    if parsed is None:
        parsed = _PARSED[row.digest] = read_playbook(
            f"{row.playbook_id} v{row.version}", row.source
        )
    return parsed


async def load_catalog(session: AsyncSession) -> Mapping[str, tuple[PublishedPlaybook, ...]]:
    """The current version of every playbook, by workspace id, parsed once per content.

    A stored version that no longer loads is left out and logged, so one bad playbook does
    not stop the others."""
    catalog: dict[str, list[PublishedPlaybook]] = {}
    for row in await repository.current_versions(session):
        try:
            parsed = _parsed(row)
        except DefinitionError as exc:
            logger.error(
                "a stored playbook version no longer loads; the playbook is left out",
                extra={
                    "workspace_id": row.workspace_id,
                    "playbook_id": row.playbook_id,
                    "error": str(exc),
                },
            )
            continue
        catalog.setdefault(row.workspace_id, []).append(
            PublishedPlaybook(row.workspace_id, row.playbook_id, row.version, parsed)
        )
    return {
        workspace: tuple(sorted(found, key=lambda p: p.playbook_id))
        for workspace, found in catalog.items()
    }


async def pinned_step(
    session: AsyncSession, workspace_id: str, playbook_id: str, version: int, step_id: str
) -> Step | None:
    """Step ``step_id`` (its own id, without the playbook's) of version ``version``, the one
    a delivery was planned from; ``None`` when that version or step is gone or no longer
    loads."""
    row = await _PLAYBOOKS.rows(workspace_id, playbook_id).version(session, version)
    if row is None:
        return None
    try:
        playbook = _parsed(row)
    except DefinitionError:
        return None
    return next(
        (step for rule in playbook.rules for step in rule.steps if step.id == step_id), None
    )


_PLAYBOOKS = KeyedDefinitions(
    PlaybookRow, PlaybookVersionRow, PlaybookNotFound, "playbook", "playbook"
)


def _info(row: PlaybookVersionRow) -> VersionInfo:
    return VersionInfo(
        row.playbook_id,
        row.version,
        row.name,
        row.source_name,
        row.digest,
        row.published_at,
        row.published_by,
    )


def _playbook_info(row: PlaybookRow, current: PlaybookVersionRow) -> PlaybookInfo:
    return PlaybookInfo(row.workspace_id, row.playbook_id, row.updated_at, _info(current))
