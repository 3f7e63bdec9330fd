"""Admin tokens: the bearer tokens of the admin APIs (``/api/engine/``, ``/api/scoring/``,
``/api/messaging/``), each for one workspace or for all of them.

A token reads ``mpa_<token id>_<secret>`` and is stored like a write key: only its SHA-256,
compared in constant time. Its plaintext exists once, when it is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import Clock
from shared.errors import Invalid
from shared.tenancy.models import AdminToken
from shared.tenancy.repository import AdminTokenRepository, WorkspaceRepository
from shared.tenancy.service import (
    WorkspaceError,
    hash_key,
    hash_matches,
    key_id_of,
    new_key,
)

TOKEN_PREFIX = "mpa_"  # noqa: S105 - the prefix, not a secret
OPERATOR = "operator"
"""Who acts without an admin token of their own: a setting's token, the CLI, embedded mode."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid admin token opens: one workspace (by name), or every one (None).
    ``name`` says who holds it, for the record (``published_by``, a move's actor): a stored
    token's label (its id when it has none), or ``operator`` for the token of a setting
    (``token_id`` None). The token itself is never recorded."""

    workspace: str | None
    name: str = field(default=OPERATOR, compare=False)
    token_id: str | None = field(default=None, compare=False)

    def covers(self, workspace: str) -> bool:
        return self.workspace is None or self.workspace == workspace

    def actor(self, claimed: str | None) -> str:
        """Who acts, for the record: a stored token's name; for a setting's token, shared
        by whoever holds its value, the ``claimed`` name (``operator`` without one).
        Raises :class:`Invalid` (field ``actor``) when a stored token claims another name."""
        if self.token_id is None:
            return claimed or self.name
        if claimed is not None and claimed != self.name:
            raise Invalid(
                f"this admin token acts as {self.name!r} (its label); leave actor out",
                field="actor",
            )
        return self.name


EVERY_WORKSPACE = Grant(workspace=None)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly created token: the only time its plaintext exists."""

    token_id: str
    workspace: str | None
    token: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    workspace: str | None
    label: str
    created_at: datetime
    revoked_at: datetime | None


async def create_token(
    session: AsyncSession, *, workspace: str | None, label: str, clock: Clock
) -> IssuedToken:
    """A new token for the workspace named ``workspace`` (None: every workspace)."""
    label = label.strip()
    if len(label) > 100:
        raise WorkspaceError("an admin token's label has at most 100 characters")
    workspace_id = None
    if workspace is not None:
        found = await WorkspaceRepository(session).workspace_by_name(workspace)
        if found is None:
            raise WorkspaceError(f"no workspace named {workspace!r}")
        workspace_id = found.id
    token_id, token = new_key(TOKEN_PREFIX)
    await AdminTokenRepository(session).add(
        AdminToken(
            id=token_id,
            workspace_id=workspace_id,
            label=label,
            secret_hash=hash_key(token),
            created_at=clock.now(),
        )
    )
    return IssuedToken(token_id=token_id, workspace=workspace, token=token)


async def list_tokens(session: AsyncSession) -> list[TokenInfo]:
    return [
        TokenInfo(token.id, workspace, token.label, token.created_at, token.revoked_at)
        for token, workspace in await AdminTokenRepository(session).tokens()
    ]


async def revoke_token(session: AsyncSession, token_id: str, *, clock: Clock) -> None:
    """Revoke a token at once; revoking it again changes nothing."""
    repository = AdminTokenRepository(session)
    found = await repository.token(token_id)
    if found is None:
        raise WorkspaceError(f"no admin token {token_id!r}")
    if found[0].revoked_at is None:
        await repository.revoke(found[0], clock.now())


async def grant_of(session: AsyncSession, token: str) -> Grant | None:
    """What ``token`` opens; None when it is unknown, revoked or not shaped like ours."""
    token_id = key_id_of(token, TOKEN_PREFIX)
    if token_id is None:
        return None
    found = await AdminTokenRepository(session).token(token_id)
    if found is None or not hash_matches(found[0].secret_hash, token):
        return None
    row, workspace = found
    if row.revoked_at is not None:
        return None
    return Grant(workspace, row.label or row.id, token_id=row.id)
