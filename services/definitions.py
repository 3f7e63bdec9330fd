"""The versioned definitions (growth paths, playbooks, a workspace's metric definitions):
how their versions are stored, read, listed and published.

Each kind stores a head row naming its current version and one immutable row per version;
a version row's primary key is its head's plus the version number. Publishing refuses
content whose digest equals the current version's and otherwise adds version N+1 (one past
the highest ever published) and makes it current. Rows are flushed, never committed; the
kinds' services give the rows, the parsed file and their own errors and messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import Column, ColumnElement, and_, func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import Clock

MAX_PAGE = 200
"""The most definitions (or versions) one page lists."""


class Head(Protocol):
    """The row of a definition that names its current version."""

    current_version: int
    updated_at: datetime


class StoredVersion(Protocol):
    """One immutable published version, and who published it."""

    @property
    def version(self) -> int: ...

    @property
    def digest(self) -> str: ...

    published_by: str


H = TypeVar("H", bound=Head)
V = TypeVar("V", bound=StoredVersion)
# DefinitionRows takes unbounded types: mypy rejects the ORM row classes against a Protocol
# bound on a class (not on a function), so the functions below carry the bounds.
HeadRow = TypeVar("HeadRow")
VersionRow = TypeVar("VersionRow")


@dataclass(frozen=True, slots=True)
class DefinitionRows(Generic[HeadRow, VersionRow]):
    """One definition's rows: the ``head_model`` row with primary key ``key`` and the
    ``version_model`` rows whose key is ``key`` plus the version number."""

    head_model: type[HeadRow]
    version_model: type[VersionRow]
    key: tuple[str, ...]

    async def head(self, session: AsyncSession) -> HeadRow | None:
        return await session.get(self.head_model, self.key)

    async def version(self, session: AsyncSession, number: int) -> VersionRow | None:
        return await session.get(self.version_model, (*self.key, number))

    async def every_version(self, session: AsyncSession) -> Sequence[VersionRow]:
        """Every version, oldest first."""
        number, where = self._versions()
        query = select(self.version_model).where(*where).order_by(number)
        return (await session.scalars(query)).all()

    async def latest_number(self, session: AsyncSession) -> int:
        """The highest version number published, 0 before the first."""
        number, where = self._versions()
        found: int | None = await session.scalar(select(func.max(number)).where(*where))
        return found or 0

    async def add(self, session: AsyncSession, *rows: HeadRow | VersionRow) -> None:
        session.add_all(rows)
        await session.flush()

    def _versions(self) -> tuple[Column[Any], list[ColumnElement[bool]]]:
        """The version-number column, and the conditions that pick this definition's rows."""
        *key_columns, number = inspect(self.version_model).primary_key
        return number, [
            column == value for column, value in zip(key_columns, self.key, strict=True)
        ]


async def page_of_definitions(
    session: AsyncSession,
    head_model: type[H],
    version_model: type[V],
    workspace_id: str,
    *,
    after: str | None,
    limit: int,
) -> tuple[list[tuple[H, V]], str | None]:
    """Up to ``limit`` of the workspace's definitions by id after ``after`` (keyset paging),
    each with its current version, and the next page's cursor (``None`` after the last).

    For kinds whose head's primary key is (workspace id, definition id)."""
    heads = inspect(head_model)
    workspace_column, id_column = heads.primary_key
    *version_key, number = inspect(version_model).primary_key
    same_definition = [v == h for v, h in zip(version_key, heads.primary_key, strict=True)]
    query = (
        select(head_model, version_model)
        .join(version_model, and_(*same_definition, number == heads.columns["current_version"]))
        .where(workspace_column == workspace_id)
    )
    if after is not None:
        query = query.where(id_column > after)
    rows = await session.execute(query.order_by(id_column).limit(limit + 1))
    found: list[tuple[H, V]] = [(head, version) for head, version in rows]
    page = found[:limit]
    more = len(found) > limit
    return page, (str(heads.primary_key_from_instance(page[-1][0])[1]) if more else None)


async def required_head(session: AsyncSession, rows: DefinitionRows[H, V], missing: Exception) -> H:
    """The definition's head; raises ``missing`` when nothing was ever published."""
    head = await rows.head(session)
    if head is None:
        raise missing
    return head


async def history(
    session: AsyncSession, rows: DefinitionRows[H, V], *, missing: Exception
) -> tuple[H, V, Sequence[V]]:
    """The head, its current version and every version, oldest first; raises ``missing``
    when nothing was ever published."""
    head = await required_head(session, rows, missing)
    versions = await rows.every_version(session)
    current = next(v for v in versions if v.version == head.current_version)
    return head, current, versions


async def chosen_version(
    session: AsyncSession,
    rows: DefinitionRows[H, V],
    number: int | None,
    *,
    missing: Exception,
    no_version: Callable[[int], Exception],
) -> tuple[H, V]:
    """The head and version ``number`` (default: the current one); raises ``missing`` when
    nothing was ever published and ``no_version(number)`` when that version does not exist."""
    head = await required_head(session, rows, missing)
    chosen = head.current_version if number is None else number
    found = await rows.version(session, chosen)
    if found is None:
        raise no_version(chosen)
    return head, found


async def publish_version(
    session: AsyncSession,
    rows: DefinitionRows[H, V],
    digest: str,
    *,
    new_head: Callable[[int, datetime], H],
    new_version: Callable[[int, datetime], V],
    unchanged: Callable[[str], Exception],
    version_name: Callable[[int], str],
    published_by: str,
    clock: Clock,
) -> V:
    """Add version N+1 (``new_version(number, now)``, which may raise the kind's own
    refusals) published by ``published_by`` and make it current, creating the head
    (``new_head(number, now)``) for the first version.

    Raises ``unchanged("<version_name(N)> has the same content: nothing to publish")`` when
    ``digest`` is the current version's."""
    head = await rows.head(session)
    if head is not None:
        current = await rows.version(session, head.current_version)
        if current is not None and current.digest == digest:
            raise unchanged(
                f"{version_name(current.version)} has the same content: nothing to publish"
            )
    number = await rows.latest_number(session) + 1
    now = clock.now()
    version = new_version(number, now)
    version.published_by = published_by
    if head is None:
        await rows.add(session, new_head(number, now), version)
    else:
        head.current_version = number
        head.updated_at = now
        await rows.add(session, version)
    return version


@dataclass(frozen=True, slots=True)
class KeyedDefinitions(Generic[HeadRow, VersionRow]):
    """A kind whose definitions have an id in their workspace (growth paths, playbooks):
    heads keyed by (workspace id, id), and ``not_found(message)`` for a missing definition
    (``no <noun> 'id' in this workspace``) or version (``<short> 'id' has no version N``)."""

    head_model: type[HeadRow]
    version_model: type[VersionRow]
    not_found: Callable[[str], Exception]
    noun: str
    short: str

    def rows(self, workspace_id: str, key: str) -> DefinitionRows[HeadRow, VersionRow]:
        return DefinitionRows(self.head_model, self.version_model, (workspace_id, key))

    def missing(self, key: str) -> Exception:
        return self.not_found(f"no {self.noun} {key!r} in this workspace")

    async def page(
        self: KeyedDefinitions[H, V],
        session: AsyncSession,
        workspace_id: str,
        *,
        cursor: str | None,
        limit: int,
    ) -> tuple[list[tuple[H, V]], str | None]:
        """A page of the workspace's definitions (at most :data:`MAX_PAGE`), see
        :func:`page_of_definitions`."""
        return await page_of_definitions(
            session,
            self.head_model,
            self.version_model,
            workspace_id,
            after=cursor,
            limit=max(1, min(limit, MAX_PAGE)),
        )

    async def history(
        self: KeyedDefinitions[H, V], session: AsyncSession, workspace_id: str, key: str
    ) -> tuple[H, V, Sequence[V]]:
        """See :func:`history`; raises :meth:`missing`."""
        return await history(session, self.rows(workspace_id, key), missing=self.missing(key))

    async def version(
        self: KeyedDefinitions[H, V],
        session: AsyncSession,
        workspace_id: str,
        key: str,
        number: int | None,
    ) -> tuple[H, V]:
        """See :func:`chosen_version`; raises ``not_found``."""
        return await chosen_version(
            session,
            self.rows(workspace_id, key),
            number,
            missing=self.missing(key),
            no_version=lambda chosen: self.not_found(
                f"{self.short} {key!r} has no version {chosen}"
            ),
        )
