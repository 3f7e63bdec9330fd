"""All workspace and write-key queries. Flushes; the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.workspaces.models import Workspace, WriteKey


class WorkspaceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_workspace(self, workspace: Workspace) -> None:
        self._session.add(workspace)
        await self._session.flush()

    async def add_key(self, key: WriteKey) -> None:
        self._session.add(key)
        await self._session.flush()

    async def workspace_by_name(self, name: str) -> Workspace | None:
        return await self._session.scalar(select(Workspace).where(Workspace.name == name))

    async def workspaces(self) -> Sequence[Workspace]:
        return (await self._session.scalars(select(Workspace).order_by(Workspace.name))).all()

    async def key(self, key_id: str) -> WriteKey | None:
        return await self._session.get(WriteKey, key_id)

    async def keys_of(self, workspace_id: str) -> Sequence[WriteKey]:
        query = (
            select(WriteKey)
            .where(WriteKey.workspace_id == workspace_id)
            .order_by(WriteKey.created_at)
        )
        return (await self._session.scalars(query)).all()

    async def revoke_key(self, key: WriteKey, at: datetime) -> None:
        key.revoked_at = at
        await self._session.flush()
