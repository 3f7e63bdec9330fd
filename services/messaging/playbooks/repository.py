"""Queries on published playbooks and their versions. Repositories flush, never commit."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.playbooks.models import PlaybookRow, PlaybookVersionRow


def _with_current() -> ColumnElement[bool]:
    return (
        (PlaybookVersionRow.workspace_id == PlaybookRow.workspace_id)
        & (PlaybookVersionRow.playbook_id == PlaybookRow.playbook_id)
        & (PlaybookVersionRow.version == PlaybookRow.current_version)
    )


async def current_versions(session: AsyncSession) -> list[PlaybookVersionRow]:
    """The current version of every playbook of every workspace."""
    query = select(PlaybookVersionRow).join(PlaybookRow, _with_current())
    return list((await session.scalars(query)).all())
