"""The ``milepost`` command: run the services and administer workspaces, database and topics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from alembic.util.exc import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.clock import Clock
from shared.settings import RuntimeSettings

T = TypeVar("T")

app = typer.Typer(
    name="milepost",
    help="Milepost: event-driven B2B account lifecycle automation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
workspace_app = typer.Typer(help="Workspaces (tenants) and their write keys.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
kafka_app = typer.Typer(help="Kafka topic administration.", no_args_is_help=True)
contracts_app = typer.Typer(help="Wire contracts: JSON Schemas and AsyncAPI.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(db_app, name="db")
app.add_typer(kafka_app, name="kafka")
app.add_typer(contracts_app, name="contracts")


def main() -> None:
    app()


def _runtime() -> RuntimeSettings:
    from shared.observability.logging import configure_logging

    settings = RuntimeSettings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


@app.command()
def run() -> None:
    """Run every service in one process (embedded mode: in-memory bus and SQLite by default).

    Creates a demo workspace on first start and prints its write key.
    """
    from services.embedded import run_embedded

    asyncio.run(run_embedded(_runtime()))


@app.command()
def ingest() -> None:
    """Run the ingest service alone (production: MILEPOST_BUS=kafka, MILEPOST_DATABASE_URL)."""
    from services.ingest.app import run_ingest

    asyncio.run(run_ingest(_runtime()))


@workspace_app.command("create")
def workspace_create(name: Annotated[str, typer.Argument(help="A unique name.")]) -> None:
    """Create a workspace and print its first write key (the last line of the output)."""
    from services.ingest.workspaces.service import create_workspace

    issued = _in_session(lambda session, clock: create_workspace(session, name, clock=clock))
    typer.echo(f"workspace {name} created: id {issued.workspace_id}, key id {issued.key_id}")
    typer.echo("write key (shown once, store it now):")
    typer.echo(issued.write_key)


@workspace_app.command("list")
def workspace_list() -> None:
    """List workspaces with their key ids and whether each key is revoked."""
    from services.ingest.workspaces.service import list_workspaces

    rows = _in_session(lambda session, _clock: list_workspaces(session))
    if not rows:
        typer.echo("no workspaces yet: milepost workspace create NAME")
    for workspace, keys in rows:
        typer.echo(f"{workspace.name}\t{workspace.id}\tcreated {workspace.created_at:%Y-%m-%d}")
        for key in keys:
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            typer.echo(f"  key {key.key_id}\tissued {key.created_at:%Y-%m-%d %H:%M}\t{state}")


@workspace_app.command("rotate")
def workspace_rotate(
    name: str,
    revoke_old: Annotated[
        bool, typer.Option("--revoke-old", help="Revoke every existing key at once.")
    ] = False,
) -> None:
    """Issue a new write key; old keys keep working unless --revoke-old (or `revoke`)."""
    from services.ingest.workspaces.service import rotate_key

    issued = _in_session(
        lambda session, clock: rotate_key(session, name, clock=clock, revoke_existing=revoke_old)
    )
    typer.echo(f"new key id {issued.key_id} for {name}; write key (shown once):")
    typer.echo(issued.write_key)


@workspace_app.command("revoke")
def workspace_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id from `list`.")],
) -> None:
    """Revoke one write key; requests with it get 401 within seconds."""
    from services.ingest.workspaces.service import revoke_key

    _in_session(lambda session, clock: revoke_key(session, key_id, clock=clock))
    typer.echo(f"key {key_id} revoked")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to MILEPOST_DATABASE_URL (or the embedded SQLite)."""
    from services.migrations import upgrade_to_head

    asyncio.run(_with_engine(_runtime(), upgrade_to_head, migrate_sqlite=False))
    typer.echo("database schema is at head")


@db_app.command("check")
def db_check() -> None:
    """Fail when the models have changes that no migration covers (``alembic check``)."""
    from services.migrations import check_models_match

    try:
        asyncio.run(_with_engine(_runtime(), check_models_match, migrate_sqlite=False))
    except CommandError as exc:
        typer.echo(f"error: {exc} (run `milepost db upgrade` first?)", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo("models and migrations agree")


@kafka_app.command("ensure-topics")
def kafka_ensure_topics(
    replication_factor: Annotated[
        int | None, typer.Option(help="Default: MILEPOST_KAFKA_REPLICATION_FACTOR.")
    ] = None,
) -> None:
    """Create the missing Milepost topics with their partitions and configs (idempotent)."""
    from shared.bus.kafka import KafkaBus, KafkaOptions
    from shared.contracts import TOPICS

    runtime = _runtime()
    bus = KafkaBus(KafkaOptions(bootstrap_servers=runtime.kafka_bootstrap_servers))
    factor = replication_factor or runtime.kafka_replication_factor
    asyncio.run(bus.ensure_topics(TOPICS, replication_factor=factor))
    for spec in TOPICS:
        typer.echo(f"{spec.topic}\t{spec.partitions} partitions\t{spec.cleanup_policy}")


@contracts_app.command("export")
def contracts_export(
    out: Annotated[Path, typer.Option(help="Folder for the schemas and asyncapi.yaml.")] = Path(
        "docs/contracts"
    ),
) -> None:
    """Write the topics' JSON Schemas and the AsyncAPI 3.0 document."""
    from shared.contracts.export import write_contracts

    for path in write_contracts(out):
        typer.echo(str(path))


def _in_session(work: Callable[[AsyncSession, Clock], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction and commit it: the CLI is an entry point."""
    from services.ingest.errors import IngestError
    from shared.clock import SystemClock
    from shared.db import create_session_factory

    async def _run(engine: AsyncEngine) -> T:
        async with create_session_factory(engine)() as session:
            result = await work(session, SystemClock())
            await session.commit()
            return result

    try:
        return asyncio.run(_with_engine(_runtime(), _run, migrate_sqlite=True))
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc


async def _with_engine(
    runtime: RuntimeSettings,
    work: Callable[[AsyncEngine], Awaitable[T]],
    *,
    migrate_sqlite: bool,
) -> T:
    """Open the database, bring an embedded SQLite schema up to date, run ``work``."""
    from services.migrations import upgrade_to_head
    from shared.db import create_engine

    url = runtime.resolved_database_url()
    if make_url(url).get_backend_name() == "sqlite":
        runtime.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    try:
        if migrate_sqlite and make_url(url).get_backend_name() == "sqlite":
            await upgrade_to_head(engine)
        return await work(engine)
    finally:
        await engine.dispose()
