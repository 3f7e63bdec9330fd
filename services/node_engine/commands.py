"""``milepost paths``: a workspace's growth paths (validate, publish, list, show, pause and
resume versions). ``milepost paths simulate``, which also plans messaging's outreach, is
added by the top-level command (:mod:`services.cli`)."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from services.command_line import (
    Refusals,
    WorkspaceName,
    add_validate_command,
    every_item,
    in_workspace,
    publish_file,
)
from services.node_engine.errors import NodeEngineError

paths_app = typer.Typer(
    help="Growth paths: validate, publish, list, show, pause and resume versions, and "
    "simulate a version on past events.",
    no_args_is_help=True,
)
ENGINE_REFUSALS: Refusals = (NodeEngineError,)


class Migration(StrEnum):
    PIN = "pin"
    MIGRATE = "migrate"
    RESTART = "restart"


def _path_summary(file: Path) -> str:
    """A valid growth-path file's id and size."""
    from services.node_engine.paths.service import compile_source
    from shared.definitions.document import read_definition

    path = compile_source(str(file), read_definition(file), version=1)
    nodes = sum(len(stage.nodes) for stage in path.stages)
    tiers = f", {len(path.tiers.levels)} tiers" if path.tiers else ""
    return (
        f"{path.id} ({len(path.stages)} stages, {nodes} nodes{tiers}, "
        f"{len(path.aggregates)} aggregates)"
    )


add_validate_command(paths_app, "growth-path", _path_summary)


@paths_app.command("publish")
def paths_publish(
    file: Annotated[Path, typer.Argument(help="The growth-path YAML file.")],
    workspace: WorkspaceName = "demo",
    migration: Annotated[
        Migration,
        typer.Option(
            help="How accounts on older versions move to this one: pin (they stay), migrate "
            "(to the mapped or same node) or restart (from the first stage)."
        ),
    ] = Migration.PIN,
    node_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="OLD=NEW",
            help="With --migrate: an old stage or node id and the new one (repeatable).",
        ),
    ] = None,
) -> None:
    """Publish FILE as the next version of its path and make it current.

    Refused when the file is invalid, when its content equals the current version, or
    when the node map names unknown ids.
    """
    from services.node_engine.paths.service import MIGRATION_POLICIES, publish

    mapping = dict(_pair(item) for item in node_map or ())
    policy = next(p for p in MIGRATION_POLICIES if p == migration.value)
    info = publish_file(
        partial(publish, migration=policy, node_map=mapping),
        file,
        workspace,
        refusals=ENGINE_REFUSALS,
    )
    typer.echo(
        f"published {info.path_id} v{info.version} in {workspace} "
        f"(migration: {info.migration}; digest {info.digest[:12]})"
    )


@paths_app.command("list")
def paths_list(workspace: WorkspaceName = "demo") -> None:
    """List the workspace's growth paths with their current version."""
    from services.node_engine.paths.service import MAX_PAGE, list_paths

    paths = every_item(list_paths, workspace, limit=MAX_PAGE, refusals=ENGINE_REFUSALS)
    if not paths:
        typer.echo(f"no growth paths in {workspace} yet: milepost paths publish FILE")
    for item in paths:
        state = "paused" if item.paused else "active"
        typer.echo(
            f"{item.path_id}\tv{item.current.version}\t{state}\t{item.current.name}\t"
            f"published {item.current.published_at:%Y-%m-%d %H:%M} by {item.current.published_by}"
        )


@paths_app.command("show")
def paths_show(
    path_id: Annotated[str, typer.Argument(help="The path's id.")],
    version: Annotated[int | None, typer.Option(help="A version (default: current).")] = None,
    workspace: WorkspaceName = "demo",
    source: Annotated[bool, typer.Option("--source", help="Print the file as published.")] = False,
) -> None:
    """Show one version of a path: its stages, nodes, due dates, tiers and aggregates."""
    from services.node_engine.paths.service import show

    detail = in_workspace(
        lambda session, _clock, workspace_id: show(session, workspace_id, path_id, version),
        workspace,
        refusals=ENGINE_REFUSALS,
    )
    if source:
        typer.echo(detail.source, nl=False)
        return
    info, path = detail.info, detail.path
    current = " (current)" if detail.is_current else ""
    typer.echo(f"{info.path_id} v{info.version}{current}: {info.name}")
    typer.echo(
        f"  published {info.published_at:%Y-%m-%d %H:%M} by {info.published_by} from {info.source_name}; "
        f"migration {info.migration}"
        + (f" with map {dict(info.node_map)}" if info.node_map else "")
    )
    typer.echo(f"  enrol when: {path.enrol_when.source}")
    for stage in path.stages:
        typer.echo(f"  stage {stage.id}: {stage.name}")
        for node in stage.nodes:
            due = (
                f", due {_duration(node.due_seconds)} from {node.due_from}"
                if node.due_seconds
                else ""
            )
            escalations = "".join(
                f", then {_duration(e.at_seconds)} {e.action} {'/'.join(e.notify)}"
                for e in node.escalations
            )
            typer.echo(f"    node {node.id}: {node.complete_when.source}{due}{escalations}")
    if path.tiers:
        levels = ", ".join(
            f"{level.id} at {level.enter_at:,.10g}"
            + (
                f" (out below {level.exit_below:,.10g})"
                if level.exit_below != level.enter_at
                else ""
            )
            for level in path.tiers.levels
        )
        typer.echo(f"  tiers by {path.tiers.label}: {levels}")
    typer.echo(f"  aggregates kept per account: {len(path.aggregates)}")


@paths_app.command("pause")
def paths_pause(
    path_id: Annotated[str, typer.Argument(help="The path's id.")],
    workspace: WorkspaceName = "demo",
) -> None:
    """Pause a path: data is still counted, but accounts do not move and nothing fires."""
    _set_paused(path_id, workspace, paused=True)


@paths_app.command("resume")
def paths_resume(
    path_id: Annotated[str, typer.Argument(help="The path's id.")],
    workspace: WorkspaceName = "demo",
) -> None:
    """Resume a paused path."""
    _set_paused(path_id, workspace, paused=False)


def _set_paused(path_id: str, workspace: str, *, paused: bool) -> None:
    from services.node_engine.paths.service import set_paused

    info = in_workspace(
        lambda session, clock, workspace_id: set_paused(
            session, workspace_id, path_id, paused=paused, clock=clock
        ),
        workspace,
        refusals=ENGINE_REFUSALS,
    )
    typer.echo(f"{info.path_id} is {'paused' if info.paused else 'active'} in {workspace}")


def _pair(item: str) -> tuple[str, str]:
    old, separator, new = item.partition("=")
    if not separator or not old.strip() or not new.strip():
        raise typer.BadParameter(f"{item!r} is not OLD=NEW", param_hint="--map")
    return old.strip(), new.strip()


def _duration(seconds: int | None) -> str:
    from shared.durations import format_duration

    return format_duration(timedelta(seconds=seconds or 0))
