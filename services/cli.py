"""The ``milepost`` command, the one entry point: runs the services (together or each alone),
administers workspaces, admin tokens, the database and topics, and adds each service's own
commands (``services/<service>/commands.py``). What combines services lives here: the
scoring service given the engine's growth paths, and ``paths simulate`` with messaging's
outreach."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from alembic.util.exc import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from services.command_line import (
    WorkspaceName,
    in_session,
    runtime_settings,
    serve_until_stopped,
    with_engine,
)
from services.messaging.commands import messaging_app, playbooks_app
from services.node_engine.commands import paths_app
from services.scoring.commands import scoring_app
from shared.settings import RuntimeSettings

if TYPE_CHECKING:
    from services.messaging.simulation.service import OutreachSimulation
    from services.node_engine.paths.compiled import GrowthPath
    from services.node_engine.paths.service import VersionDetail
    from services.node_engine.simulation.report import Report
    from shared.contracts.topics import TopicSpec
    from shared.event_log import EventLog

T = TypeVar("T")

app = typer.Typer(
    name="milepost",
    help="Milepost: event-driven B2B account lifecycle automation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
workspace_app = typer.Typer(help="Workspaces (tenants) and their write keys.", no_args_is_help=True)
admin_token_app = typer.Typer(
    help="Admin tokens: bearer tokens of /api/engine/, /api/scoring/ and /api/messaging/, "
    "each for one workspace or all of them.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
kafka_app = typer.Typer(help="Kafka topic administration.", no_args_is_help=True)
contracts_app = typer.Typer(help="Wire contracts: JSON Schemas and AsyncAPI.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(admin_token_app, name="admin-token")
app.add_typer(db_app, name="db")
app.add_typer(kafka_app, name="kafka")
app.add_typer(contracts_app, name="contracts")
app.add_typer(scoring_app, name="scoring")
app.add_typer(messaging_app, name="messaging")
app.add_typer(playbooks_app, name="playbooks")
app.add_typer(paths_app, name="paths")


def main() -> None:
    app()


@app.command()
def run(
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Run on a clock you can move forward (POST /api/sandbox/clock/advance) to "
            "watch day-based paths and outreach happen; the data folder stays a sandbox.",
        ),
    ] = False,
) -> None:
    """Run every service in one process (embedded mode: a bus file and SQLite by default).

    Creates a demo workspace on first start and prints its write key.
    """
    from services.embedded import run_embedded
    from services.sandbox import sandbox_clock

    runtime = runtime_settings()
    try:
        clock = sandbox_clock(runtime, requested=sandbox)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    serve_until_stopped(run_embedded(runtime, sandbox=clock))


@app.command()
def ingest() -> None:
    """Run the ingest service alone (production: MILEPOST_BUS=kafka, MILEPOST_DATABASE_URL)."""
    from services.ingest.app import run_ingest

    serve_until_stopped(run_ingest(runtime_settings()))


@app.command()
def engine() -> None:
    """Run the node engine alone, with the attribution stage that feeds it: attribute
    milepost.events to milepost.accounts.events, consume those and milepost.scores, publish
    milepost.triggers, serve the admin API under /api/engine/ (MILEPOST_ENGINE_* and
    MILEPOST_ATTRIBUTION_* settings)."""
    from services.node_engine.app import run_engine

    serve_until_stopped(run_engine(runtime_settings()))


@scoring_app.callback()
def scoring(context: typer.Context) -> None:
    """Run the scoring service alone: consume milepost.events, publish milepost.scores,
    serve /api/scoring/ (MILEPOST_SCORING_* settings)."""
    if context.invoked_subcommand is not None:
        return
    from services.node_engine.paths.service import load_catalog
    from services.scoring.app import run_scoring

    serve_until_stopped(run_scoring(runtime_settings(), load_paths=load_catalog))


@messaging_app.callback()
def messaging(context: typer.Context) -> None:
    """Run the messaging service alone (MILEPOST_MESSAGING_* settings), with the draft
    simulation under /api/simulation/ (it replays with the engine's code, handed over here)."""
    if context.invoked_subcommand is not None:
        return
    from services.messaging.app import run_messaging
    from services.simulation_router import simulation_router

    serve_until_stopped(run_messaging(runtime_settings(), simulation=simulation_router))


@workspace_app.command("create")
def workspace_create(name: Annotated[str, typer.Argument(help="A unique name.")]) -> None:
    """Create a workspace and print its first write key (the last line of the output)."""
    from shared.tenancy.service import create_workspace

    issued = in_session(lambda session, clock: create_workspace(session, name, clock=clock))
    typer.echo(f"workspace {name} created: id {issued.workspace_id}, key id {issued.key_id}")
    typer.echo("write key (shown once, store it now):")
    typer.echo(issued.write_key)


@workspace_app.command("list")
def workspace_list() -> None:
    """List workspaces with their key ids and whether each key is revoked."""
    from shared.tenancy.service import list_workspaces

    rows = in_session(lambda session, _clock: list_workspaces(session))
    if not rows:
        typer.echo("no workspaces yet: milepost workspace create NAME")
    for workspace, keys in rows:
        typer.echo(f"{workspace.name}\t{workspace.id}\tcreated {workspace.created_at:%Y-%m-%d}")
        for key in keys:
            typer.echo(
                f"  key {key.key_id}\tissued {key.created_at:%Y-%m-%d %H:%M}\t"
                f"{_state(key.revoked_at)}"
            )


@workspace_app.command("rotate")
def workspace_rotate(
    name: str,
    revoke_old: Annotated[
        bool, typer.Option("--revoke-old", help="Revoke every existing key at once.")
    ] = False,
) -> None:
    """Issue a new write key; old keys keep working unless --revoke-old (or `revoke`)."""
    from shared.tenancy.service import rotate_key

    issued = in_session(
        lambda session, clock: rotate_key(session, name, clock=clock, revoke_existing=revoke_old)
    )
    typer.echo(f"new key id {issued.key_id} for {name}; write key (shown once):")
    typer.echo(issued.write_key)


@workspace_app.command("revoke")
def workspace_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id from `list`.")],
) -> None:
    """Revoke one write key; requests with it get 401 within seconds."""
    from shared.tenancy.service import revoke_key

    in_session(lambda session, clock: revoke_key(session, key_id, clock=clock))
    typer.echo(f"key {key_id} revoked")


@admin_token_app.command("create")
def admin_token_create(
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="The one workspace it opens.")
    ] = None,
    all_workspaces: Annotated[
        bool, typer.Option("--all-workspaces", help="Open every workspace instead.")
    ] = False,
    label: Annotated[str, typer.Option(help="Who or what holds it, e.g. ops.")] = "",
) -> None:
    """Create an admin token and print it (the last line of the output, shown once)."""
    from shared.tenancy.admin_tokens import create_token

    if (workspace is not None) == all_workspaces:
        raise typer.BadParameter("give either --workspace NAME or --all-workspaces")
    issued = in_session(
        lambda session, clock: create_token(session, workspace=workspace, label=label, clock=clock)
    )
    typer.echo(
        f"admin token {issued.token_id} created for {_scope(issued.workspace)}; "
        "token (shown once, store it now):"
    )
    typer.echo(issued.token)


@admin_token_app.command("list")
def admin_token_list() -> None:
    """List admin tokens: id, scope, label, creation and whether each is revoked."""
    from shared.tenancy.admin_tokens import list_tokens

    tokens = in_session(lambda session, _clock: list_tokens(session))
    if not tokens:
        typer.echo("no admin tokens yet: milepost admin-token create --workspace NAME")
    for token in tokens:
        typer.echo(
            f"{token.token_id}\t{_scope(token.workspace)}\t{token.label or '-'}\t"
            f"created {token.created_at:%Y-%m-%d %H:%M}\t{_state(token.revoked_at)}"
        )


@admin_token_app.command("revoke")
def admin_token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token id from `list`.")],
) -> None:
    """Revoke an admin token; requests with it get 401 at once."""
    from shared.tenancy.admin_tokens import revoke_token

    in_session(lambda session, clock: revoke_token(session, token_id, clock=clock))
    typer.echo(f"admin token {token_id} revoked")


def _scope(workspace: str | None) -> str:
    return "all workspaces" if workspace is None else f"workspace {workspace}"


def _state(revoked_at: datetime | None) -> str:
    """A key's or token's state in a listing."""
    return f"revoked {revoked_at:%Y-%m-%d %H:%M}" if revoked_at else "active"


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations to MILEPOST_DATABASE_URL (or the embedded SQLite)."""
    from services.migrations import upgrade_to_head

    asyncio.run(with_engine(runtime_settings(), upgrade_to_head, migrate_sqlite=False))
    typer.echo("database schema is at head")


@db_app.command("check")
def db_check() -> None:
    """Fail when the models have changes that no migration covers (``alembic check``)."""
    from services.migrations import check_models_match

    try:
        asyncio.run(with_engine(runtime_settings(), check_models_match, migrate_sqlite=False))
    except CommandError as exc:
        typer.echo(f"error: {exc} (run `milepost db upgrade` first?)", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo("models and migrations agree")


@kafka_app.command("ensure-topics")
def kafka_ensure_topics(
    replication_factor: Annotated[
        int | None, typer.Option(min=1, help="Default: MILEPOST_KAFKA_REPLICATION_FACTOR.")
    ] = None,
    partitions: Annotated[
        list[str] | None,
        typer.Option(
            "--partitions",
            metavar="TOPIC=N",
            help="Partitions of a topic when it is created, e.g. milepost.events=24 "
            "(repeatable); milepost.accounts.events and milepost.scores always get "
            "milepost.events' count.",
        ),
    ] = None,
    retention: Annotated[
        list[str] | None,
        typer.Option(
            "--retention",
            metavar="TOPIC=DURATION",
            help="Retention of a topic as an ISO 8601 duration, e.g. milepost.events=P14D "
            "(repeatable).",
        ),
    ] = None,
) -> None:
    """Create the missing Milepost topics with their partitions, replication, retention and
    cleanup policy; safe to run again.

    Existing topics keep their partition count (adding partitions would move accounts to
    other partitions and break the order of their records; a different count is logged).
    Their retention and cleanup policy are set to the given ones; other per-topic configs
    stay.
    """
    from shared.bus.factory import create_bus
    from shared.durations import format_duration

    specs = _topic_specs(partitions or [], retention or [])
    runtime = runtime_settings()
    bus = create_bus(runtime.model_copy(update={"bus": "kafka"}))
    factor = replication_factor or runtime.kafka_replication_factor
    asyncio.run(bus.ensure_topics(specs, replication_factor=factor))
    for spec in specs:
        name = f"{runtime.topic_prefix}{spec.topic}"
        kept = (
            f"retention {format_duration(timedelta(seconds=int(spec.retention.total_seconds())))}"
            if spec.retention
            else ""
        )
        typer.echo(f"{name}\t{spec.partitions} partitions\t{spec.cleanup_policy}\t{kept}")


def _topic_specs(partitions: list[str], retention: list[str]) -> list[TopicSpec]:
    """Milepost's topics with the given partition counts and retentions."""
    from dataclasses import replace

    from shared.contracts import TOPICS
    from shared.contracts.topics import Topic
    from shared.durations import parse_duration

    known = {spec.topic: spec for spec in TOPICS}

    def topic_of(item: str, option: str) -> tuple[str, str]:
        topic, separator, value = (part.strip() for part in item.partition("="))
        if not separator or not value:
            raise typer.BadParameter(f"{item!r} is not TOPIC=VALUE", param_hint=option)
        if topic not in known:
            raise typer.BadParameter(
                f"unknown topic {topic!r}; one of {', '.join(sorted(known))}", param_hint=option
            )
        return topic, value

    counts: dict[str, int] = {}
    for item in partitions:
        topic, value = topic_of(item, "--partitions")
        if not value.isdigit() or int(value) < 1:
            raise typer.BadParameter(
                f"{item!r}: N must be a whole number above 0", param_hint="--partitions"
            )
        counts[topic] = int(value)
    events = str(Topic.EVENTS)
    for paired in (str(Topic.ACCOUNT_EVENTS), str(Topic.SCORES)):
        if paired in counts and counts[paired] != counts.get(events, known[events].partitions):
            raise typer.BadParameter(
                f"{paired} must have {events}' partition count: the engine reads "
                f"{Topic.ACCOUNT_EVENTS} and {Topic.SCORES} and owns an account's partition "
                "p of each",
                param_hint="--partitions",
            )
        if events in counts:
            counts[paired] = counts[events]
    kept: dict[str, timedelta] = {}
    for item in retention:
        topic, value = topic_of(item, "--retention")
        try:
            kept[topic] = parse_duration(value)
        except ValueError as exc:
            raise typer.BadParameter(f"{item!r}: {exc}", param_hint="--retention") from exc
        if kept[topic] <= timedelta(0):
            raise typer.BadParameter(
                f"{item!r}: must be longer than zero", param_hint="--retention"
            )
    return [
        replace(
            spec,
            partitions=counts.get(spec.topic, spec.partitions),
            retention=kept.get(spec.topic, spec.retention),
        )
        for spec in TOPICS
    ]


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


# -- growth paths: the engine's commands, and a simulation that also plans outreach --------


EventsFile = Annotated[
    Path | None,
    typer.Option(help="JSONL file of event envelopes, one per line as on milepost.events."),
]
EventsTopic = Annotated[
    str | None,
    typer.Option(help="Read this Kafka topic instead (MILEPOST_BUS=kafka), e.g. milepost.events."),
]
FromOffset = Annotated[
    int, typer.Option(min=0, help="With --topic: start at this offset in every partition.")
]
Since = Annotated[
    datetime | None, typer.Option(help="Only events at or after this time (UTC if no zone).")
]
Until = Annotated[
    datetime | None, typer.Option(help="Only events before this time (UTC if no zone).")
]
Horizon = Annotated[
    str | None, typer.Option(help="Keep the clock running this long after the last event.")
]
Compare = Annotated[
    bool, typer.Option(help="Also replay the workspace's current version of the path, and diff.")
]
Outreach = Annotated[
    bool,
    typer.Option(
        help="Also plan, day by day, what the workspace's playbooks would send for each "
        "trigger: to which contact and role, on which channel, the rendered message, and "
        "what consent, quiet hours and budgets decided."
    ),
]
Playbooks = Annotated[
    list[Path] | None,
    typer.Option(
        help="Plan the outreach with this playbook file (repeatable; implies "
        "--outreach) instead of the workspace's playbooks."
    ),
]


@paths_app.command("simulate")
def paths_simulate(
    file: Annotated[Path, typer.Argument(help="The growth-path YAML file to try.")],
    events: EventsFile = None,
    topic: EventsTopic = None,
    from_offset: FromOffset = 0,
    since: Since = None,
    until: Until = None,
    workspace: WorkspaceName = "demo",
    every: Annotated[str, typer.Option(help="Snapshot period (ISO 8601 duration).")] = "P1D",
    horizon: Horizon = None,
    compare: Compare = True,
    outreach: Outreach = False,
    playbook: Playbooks = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay past events through FILE with no side effects, and report.

    The report shows accounts per stage and node over time, the triggers that would fire
    by kind and role, time to complete per node, condition failures, and the difference
    from the current published version of the same path in the workspace. The clock is
    the events' own time; timers fire as it passes them. With --outreach (or --playbook)
    it also shows the messages and tasks the triggers would produce, day by day.
    """
    from services.messaging.commands import outreach_simulation
    from services.node_engine.simulation.service import simulate

    if (events is None) == (topic is None):
        raise typer.BadParameter("give either --events FILE or --topic NAME", param_hint="--events")
    every_seconds, horizon_seconds = _simulation_periods(every, horizon)
    text, draft = _compile_path_file(file, version=1)
    runtime = runtime_settings()
    planner = outreach_simulation(workspace, playbook or []) if outreach or playbook else None
    workspace_id, current, same = None, None, False
    if compare or topic is not None:
        found = _current_version(runtime, workspace, draft.id)
        if found is None and topic is not None:
            typer.echo(f"error: no workspace named {workspace!r}", err=True)
            raise typer.Exit(code=1)
        if found is not None:
            workspace_id, version = found
            if compare and version is not None:
                current = version.path
                same, draft = _draft_after(version, file, text)
    log = _simulation_log(
        runtime, events, topic, workspace_id, from_offset, since=since, until=until
    )
    with typer.progressbar(
        length=len(log), label="replaying", file=sys.stderr, show_pos=True
    ) as bar:
        report = simulate(
            draft,
            log,
            current=current,
            same_content=same,
            every_seconds=every_seconds,
            horizon_seconds=horizon_seconds,
            progress=bar.update,
            observer=planner,
        )
    _print_simulation(report, planner, as_json=as_json)


def _simulation_log(
    runtime: RuntimeSettings,
    events: Path | None,
    topic: str | None,
    workspace_id: str | None,
    from_offset: int,
    *,
    since: datetime | None,
    until: datetime | None,
) -> EventLog:
    """The events to replay, within the window: from the file, else from the topic (the
    workspace's events, from ``from_offset``)."""
    window = {"since": _utc(since), "until": _utc(until)}
    if events is not None:
        return _read_events_file(events, **window)
    assert topic is not None
    assert workspace_id is not None
    return asyncio.run(_read_topic(runtime, topic, workspace_id, from_offset, **window))


def _simulation_periods(every: str, horizon: str | None) -> tuple[int, int]:
    """The snapshot period and the horizon in seconds (0 without one); 2 on a bad one."""
    from shared.durations import parse_duration

    try:
        every_seconds = int(parse_duration(every).total_seconds())
        horizon_seconds = int(parse_duration(horizon).total_seconds()) if horizon else 0
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--every/--horizon") from exc
    if every_seconds <= 0:
        raise typer.BadParameter("must be longer than zero", param_hint="--every")
    return every_seconds, horizon_seconds


def _compile_path_file(file: Path, *, version: int) -> tuple[str, GrowthPath]:
    """The file's text and its compiled path; an invalid file exits with 1."""
    from services.node_engine.paths.service import compile_source
    from shared.definitions import DefinitionError
    from shared.definitions.document import read_definition

    try:
        text = read_definition(file)
        return text, compile_source(str(file), text, version=version)
    except DefinitionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from exc


def _draft_after(version: VersionDetail, file: Path, text: str) -> tuple[bool, GrowthPath]:
    """Whether the file has the current version's content, and the draft numbered as that
    version if so, else as the next one."""
    from services.node_engine.paths.service import compile_source
    from shared.definitions import definition_digest

    same = version.info.digest == definition_digest(text, source=str(file))
    number = version.info.version + (0 if same else 1)
    return same, compile_source(str(file), text, version=number)


def _read_events_file(path: Path, *, since: datetime | None, until: datetime | None) -> EventLog:
    """The envelopes of a JSONL file within the window; an unreadable file exits with 1."""
    from shared.event_log import read_lines

    try:
        with path.open("rb") as stream:
            return read_lines(stream, since=since, until=until)
    except OSError as exc:
        typer.echo(f"error: cannot read {path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(code=1) from exc


def _print_simulation(report: Report, planner: OutreachSimulation | None, *, as_json: bool) -> None:
    """The replay's report, then the outreach (when planned); as one JSON object with
    ``--json`` (the outreach under ``"outreach"``)."""
    import orjson

    from services.messaging.simulation.report import outreach_json, outreach_text
    from services.node_engine.simulation.report import report_json, report_text

    if as_json:
        data = report_json(report)
        if planner is not None:
            data["outreach"] = outreach_json(planner.outreach)
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(report_text(report), nl=False)
    if planner is not None:
        names = [f"{p.playbook_id} v{p.version}" for p in planner.playbooks]
        typer.echo("\n" + outreach_text(planner.outreach, names), nl=False)


def _current_version(
    runtime: RuntimeSettings, workspace: str, path_id: str
) -> tuple[str, VersionDetail | None] | None:
    """The workspace's id and its current version of the path; None without the workspace
    (or without a database to ask: a simulation needs none)."""
    from sqlalchemy.exc import SQLAlchemyError

    from services.node_engine.errors import PathNotFound
    from services.node_engine.paths.service import show
    from shared.db import create_session_factory
    from shared.tenancy.service import find_workspace

    url = make_url(runtime.resolved_database_url())
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        return None

    async def look(engine: AsyncEngine) -> tuple[str, VersionDetail | None] | None:
        async with create_session_factory(engine)() as session:
            found = await find_workspace(session, workspace)
            if found is None:
                return None
            try:
                return found.id, await show(session, found.id, path_id)
            except PathNotFound:
                return found.id, None

    try:
        return asyncio.run(with_engine(runtime, look, migrate_sqlite=False))
    except (SQLAlchemyError, OSError) as exc:
        typer.echo(f"note: no comparison, the database is unavailable ({exc})", err=True)
        return None


async def _read_topic(
    runtime: RuntimeSettings,
    topic: str,
    workspace_id: str,
    from_offset: int,
    *,
    since: datetime | None,
    until: datetime | None,
) -> EventLog:
    from shared.bus.factory import create_bus

    if runtime.bus != "kafka":
        typer.echo("error: --topic reads Kafka: set MILEPOST_BUS=kafka", err=True)
        raise typer.Exit(code=1)
    from shared.event_log import read_topic

    bus = create_bus(runtime)
    await bus.start()
    try:
        return await read_topic(
            bus, topic, workspace_id=workspace_id, from_offset=from_offset, since=since, until=until
        )
    finally:
        await bus.close()


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
