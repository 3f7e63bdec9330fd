"""All workspace, write-key and admin-token queries. Flushes; the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.tenancy.models import AdminToken, Workspace, WriteKey


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


class AdminTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, token: AdminToken) -> None:
        self._session.add(token)
        await self._session.flush()

    async def token(self, token_id: str) -> tuple[AdminToken, str | None] | None:
        """The token and the name of its workspace (None: every workspace)."""
        query = (
            select(AdminToken, Workspace.name)
            .outerjoin(Workspace, Workspace.id == AdminToken.workspace_id)
            .where(AdminToken.id == token_id)
        )
        found = (await self._session.execute(query)).first()
        return None if found is None else (found[0], found[1])

    async def tokens(self) -> Sequence[tuple[AdminToken, str | None]]:
        """Every token with its workspace's name, oldest first."""
        query = (
            select(AdminToken, Workspace.name)
            .outerjoin(Workspace, Workspace.id == AdminToken.workspace_id)
            .order_by(AdminToken.created_at, AdminToken.id)
        )
        return [(token, name) for token, name in (await self._session.execute(query)).all()]

    async def revoke(self, token: AdminToken, at: datetime) -> None:
        token.revoked_at = at
        await self._session.flush()
