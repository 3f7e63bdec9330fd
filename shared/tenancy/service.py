"""Workspace lifecycle and write-key issuing, rotation, revocation and checking.

A write key reads ``mpk_<key id>_<secret>``. Only a SHA-256 of the whole key is stored
(keys are 190+ bits of randomness, so a fast hash is enough); the key id finds the row and
the hashes are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import Clock
from shared.errors import MilepostError
from shared.tenancy.models import Workspace, WriteKey
from shared.tenancy.repository import WorkspaceRepository

KEY_PREFIX = "mpk_"
_KEY_ID_LENGTH = 12
_KEY_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class WorkspaceError(MilepostError):
    """A workspace command that cannot be done as asked (unknown name, duplicate...)."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly issued key: the only time its plaintext exists."""

    workspace_id: str
    key_id: str
    write_key: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    created_at: datetime
    revoked_at: datetime | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def hash_matches(secret_hash: str, key: str) -> bool:
    """Whether ``key`` hashes to ``secret_hash``, compared in constant time."""
    return hmac.compare_digest(secret_hash, hash_key(key))


def new_key(prefix: str) -> tuple[str, str]:
    """A fresh key id and the key ``<prefix><key id>_<secret>`` holding it."""
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(_KEY_ID_LENGTH))
    return key_id, f"{prefix}{key_id}_{secrets.token_urlsafe(24)}"


def key_id_of(key: str, prefix: str = KEY_PREFIX) -> str | None:
    """The key id inside ``key``, or None when it is not shaped like ours (``prefix``:
    write keys' by default)."""
    if not key.startswith(prefix):
        return None
    key_id, separator, secret = key[len(prefix) :].partition("_")
    if len(key_id) != _KEY_ID_LENGTH or not separator or not secret:
        return None
    return key_id


async def create_workspace(session: AsyncSession, name: str, *, clock: Clock) -> IssuedKey:
    repository = WorkspaceRepository(session)
    name = name.strip()
    if not name or len(name) > 100:
        raise WorkspaceError("a workspace name has 1 to 100 characters")
    if await repository.workspace_by_name(name) is not None:
        raise WorkspaceError(f"workspace {name!r} exists already")
    workspace = Workspace(id=f"ws_{secrets.token_hex(8)}", name=name, created_at=clock.now())
    await repository.add_workspace(workspace)
    return await _issue_key(repository, workspace.id, clock)


async def rotate_key(
    session: AsyncSession, name: str, *, clock: Clock, revoke_existing: bool
) -> IssuedKey:
    """Issue a new key; the old ones keep working unless ``revoke_existing``, so senders can
    move over before the old key is revoked."""
    repository = WorkspaceRepository(session)
    workspace = await _workspace(repository, name)
    if revoke_existing:
        for key in await repository.keys_of(workspace.id):
            if key.revoked_at is None:
                await repository.revoke_key(key, clock.now())
    return await _issue_key(repository, workspace.id, clock)


async def revoke_key(session: AsyncSession, key_id: str, *, clock: Clock) -> None:
    repository = WorkspaceRepository(session)
    key = await repository.key(key_id)
    if key is None:
        raise WorkspaceError(f"no write key {key_id!r}")
    if key.revoked_at is None:
        await repository.revoke_key(key, clock.now())


async def list_workspaces(session: AsyncSession) -> list[tuple[Workspace, list[KeyInfo]]]:
    repository = WorkspaceRepository(session)
    return [
        (
            workspace,
            [
                KeyInfo(k.id, k.created_at, k.revoked_at)
                for k in await repository.keys_of(workspace.id)
            ],
        )
        for workspace in await repository.workspaces()
    ]


async def find_workspace(session: AsyncSession, name: str) -> Workspace | None:
    return await WorkspaceRepository(session).workspace_by_name(name)


async def _workspace(repository: WorkspaceRepository, name: str) -> Workspace:
    workspace = await repository.workspace_by_name(name)
    if workspace is None:
        raise WorkspaceError(f"no workspace named {name!r}")
    return workspace


async def _issue_key(repository: WorkspaceRepository, workspace_id: str, clock: Clock) -> IssuedKey:
    key_id, write_key = new_key(KEY_PREFIX)
    await repository.add_key(
        WriteKey(
            id=key_id,
            workspace_id=workspace_id,
            secret_hash=hash_key(write_key),
            created_at=clock.now(),
        )
    )
    return IssuedKey(workspace_id=workspace_id, key_id=key_id, write_key=write_key)


def write_key_in(authorization: str) -> str | None:
    """The write key an ``Authorization`` header value carries: the user of HTTP Basic (as
    Segment's SDKs send it) or a ``Bearer`` token. ``None`` when there is none or the value
    is malformed (bad base64, non-ASCII, not UTF-8), so a bad header is a 401, never a 500.
    """
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() != "basic" or not value.isascii():
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


WRITE_KEY_CACHE_SECONDS = 5.0
"""How long a revoked write key may still pass, by default (ingest and the in-app feed)."""


class WriteKeyAuthenticator:
    """Maps a write key to its workspace id, with a short cache in front of the database.

    A revoked key stops working within ``cache_ttl``. Unknown keys are cached too, so a
    client hammering with a bad key costs one query per ``cache_ttl``.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock,
        cache_ttl_seconds: float,
        max_entries: int = 10_000,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._ttl = cache_ttl_seconds
        self._max_entries = max_entries
        self._cache: dict[str, tuple[str | None, float]] = {}

    async def workspace_for(self, write_key: str) -> str | None:
        digest = hash_key(write_key)
        now = self._clock.now().timestamp()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        workspace_id = await self._lookup(write_key, digest)
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
        self._cache[digest] = (workspace_id, now + self._ttl)
        return workspace_id

    async def _lookup(self, write_key: str, digest: str) -> str | None:
        key_id = key_id_of(write_key)
        if key_id is None:
            return None
        async with self._sessions() as session:
            key = await WorkspaceRepository(session).key(key_id)
        if key is None or key.revoked_at is not None:
            return None
        return key.workspace_id if hmac.compare_digest(key.secret_hash, digest) else None
