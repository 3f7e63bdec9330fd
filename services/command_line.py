"""What every ``milepost`` command shares: settings and logs, serving on uvloop, one
transaction per command (in a workspace), checking and publishing definition files, and
reading every page of a listing.

Commands are entry points, so they commit; a refusal is printed to stderr with exit status 1,
never a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import typer
from sqlalchemy.engine import make_url

from shared.settings import RuntimeSettings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from shared.clock import Clock

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
C = TypeVar("C")

Refusals = tuple[type[Exception], ...]
"""A service's errors that a command prints instead of a traceback."""

WorkspaceName = Annotated[
    str, typer.Option("--workspace", "-w", help="The workspace's name (`milepost run` makes demo).")
]


def runtime_settings() -> RuntimeSettings:
    """``MILEPOST_*`` settings, with logging configured from them."""
    from shared.observability.logging import configure_logging

    settings = RuntimeSettings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def run_on_fastest_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to its end on uvloop where it is installed (a dependency everywhere but
    Windows), else on asyncio's own loop: how every server runs, and the benchmarks."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(main)
    return uvloop.run(main)


def serve_until_stopped(main: Coroutine[Any, Any, None]) -> None:
    """Run a server until it stops (:func:`run_on_fastest_loop`); a refusal to start is
    printed, exit status 1."""
    from shared.errors import StartRefused

    try:
        run_on_fastest_loop(main)
    except StartRefused as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc


async def with_engine(
    runtime: RuntimeSettings,
    work: Callable[[AsyncEngine], Awaitable[T]],
    *,
    migrate_sqlite: bool,
) -> T:
    """Open the database, bring an embedded SQLite schema up to date, run ``work``."""
    from services.migrations import upgrade_to_head
    from shared.db import create_engine

    url = runtime.resolved_database_url()
    sqlite = make_url(url).get_backend_name() == "sqlite"
    if sqlite:
        runtime.private_data_dir()
    engine = create_engine(url)
    try:
        if migrate_sqlite and sqlite:
            await upgrade_to_head(engine)
        return await work(engine)
    finally:
        await engine.dispose()


def in_session(work: Callable[[AsyncSession, Clock], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction and commit it."""
    from shared.clock import SystemClock
    from shared.db import create_session_factory
    from shared.tenancy.service import WorkspaceError

    async def run(engine: AsyncEngine) -> T:
        async with create_session_factory(engine)() as session:
            result = await work(session, SystemClock())
            await session.commit()
            return result

    try:
        return asyncio.run(with_engine(runtime_settings(), run, migrate_sqlite=True))
    except WorkspaceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc


def in_workspace(
    work: Callable[[AsyncSession, Clock, str], Awaitable[T]],
    workspace: str,
    *,
    refusals: Refusals,
) -> T:
    """Run ``work(session, clock, workspace_id)`` in one transaction; an invalid definition
    file and the service's ``refusals`` are printed as errors."""
    from shared.definitions import DefinitionError
    from shared.tenancy.service import WorkspaceError, find_workspace

    async def run(session: AsyncSession, clock: Clock) -> T:
        found = await find_workspace(session, workspace)
        if found is None:
            raise WorkspaceError(f"no workspace named {workspace!r}")
        return await work(session, clock, found.id)

    try:
        return in_session(run)
    except DefinitionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from exc
    except refusals as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc


VALIDATE_HELP = (
    "Check {kind} files without publishing them.\n\n"
    "Each problem is printed as FILE:LINE:COLUMN: FIELD: MESSAGE; the exit status is 1 when\n"
    "any file has one."
)


def add_validate_command(app: typer.Typer, kind: str, summary: Callable[[Path], str]) -> None:
    """Add ``validate FILES...`` to ``app`` for definition files of ``kind``
    (``growth-path``): ``FILE: valid: <summary>`` for each good file, each problem of a bad
    one as FILE:LINE:COLUMN: FIELD: MESSAGE, exit status 1 when any file has one."""

    listed = typer.Argument(help=f"{kind.capitalize()} YAML files.")

    def validate(files: list[Path] = listed) -> None:
        validate_files(files, summary)

    app.command("validate", help=VALIDATE_HELP.format(kind=kind))(validate)


def validate_files(files: list[Path], summary: Callable[[Path], str]) -> None:
    """Print ``FILE: valid: <summary>`` for each good file and each problem of a bad one as
    FILE:LINE:COLUMN: FIELD: MESSAGE; exit status 1 when any file has one."""
    from shared.definitions import DefinitionError

    failed = False
    for file in files:
        try:
            typer.echo(f"{file}: valid: {summary(file)}")
        except DefinitionError as exc:
            typer.echo(str(exc), err=True)
            failed = True
    if failed:
        raise typer.Exit(code=1)


class Publish(Protocol[T_co]):
    """A definition kind's publish service: ``text`` (read from ``source_name``) as the next
    version in the workspace."""

    def __call__(
        self, session: AsyncSession, workspace_id: str, source_name: str, text: str, *, clock: Clock
    ) -> Awaitable[T_co]: ...


def publish_file(publish: Publish[T], file: Path, workspace: str, *, refusals: Refusals) -> T:
    """Publish ``file`` in ``workspace`` in one transaction; an unreadable or invalid file
    and the service's ``refusals`` are printed as errors."""
    from shared.definitions.document import read_definition

    return in_workspace(
        lambda session, clock, workspace_id: publish(
            session, workspace_id, str(file), read_definition(file), clock=clock
        ),
        workspace,
        refusals=refusals,
    )


class Listing(Protocol[T, C]):
    """A cursor-paged listing service: a page of up to ``limit`` items after ``cursor`` and
    the next page's cursor (``None`` after the last page)."""

    def __call__(
        self, session: AsyncSession, workspace_id: str, *, cursor: C | None, limit: int
    ) -> Awaitable[tuple[list[T], C | None]]: ...


def every_item(
    listing: Listing[T, C], workspace: str, *, limit: int, refusals: Refusals
) -> list[T]:
    """Every item of the workspace's ``listing``, read ``limit`` at a time in one
    transaction; the service's ``refusals`` are printed as errors."""

    async def every_page(session: AsyncSession, _clock: Clock, workspace_id: str) -> list[T]:
        found: list[T] = []
        cursor: C | None = None
        while True:
            items, cursor = await listing(session, workspace_id, cursor=cursor, limit=limit)
            found += items
            if cursor is None:
                return found

    return in_workspace(every_page, workspace, refusals=refusals)
