"""``milepost scoring``: the standalone scoring service, its metric definitions
(``milepost scoring metrics validate|publish|list|show``) and the optional churn model
(``train``, ``predict``, ``demo-events``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.command_line import (
    Refusals,
    WorkspaceName,
    add_validate_command,
    every_item,
    in_workspace,
    publish_file,
)
from services.scoring.errors import ScoringError
from services.scoring.model.commands import app as model_app

if TYPE_CHECKING:
    from services.scoring.catalog.service import VersionDetail

REFUSALS: Refusals = (ScoringError,)

scoring_app = typer.Typer(
    help="The scoring service: account health, churn signals and metric definitions. "
    "Without a command it runs the service alone (production: MILEPOST_BUS=kafka, "
    "MILEPOST_DATABASE_URL; MILEPOST_SCORING_* settings).",
    invoke_without_command=True,
)
metrics_app = typer.Typer(
    help="A workspace's metric definitions: validate, publish, list and show versions.",
    no_args_is_help=True,
)
scoring_app.add_typer(metrics_app, name="metrics")
scoring_app.registered_commands += model_app.registered_commands


def _metrics_summary(file: Path) -> str:
    """A valid metric-definitions file's size and North Star."""
    from services.scoring.definitions import load_metrics

    definitions = load_metrics(file)
    return f"{len(definitions.metrics)} metrics, North Star {definitions.north_star}"


add_validate_command(metrics_app, "metric-definitions", _metrics_summary)


@metrics_app.command("publish")
def metrics_publish(
    file: Annotated[Path, typer.Argument(help="The metric-definitions YAML file.")],
    workspace: WorkspaceName = "demo",
) -> None:
    """Publish FILE as the workspace's next metric-definitions version.

    Refused when the file is invalid or has the same content as the current version.
    """
    from services.scoring.catalog.service import publish

    info = publish_file(publish, file, workspace, refusals=REFUSALS)
    typer.echo(
        f"published metric definitions v{info.version} in {workspace} "
        f"({info.metric_count} metrics, North Star {info.north_star}; digest {info.digest[:12]})"
    )


@metrics_app.command("list")
def metrics_list(workspace: WorkspaceName = "demo") -> None:
    """List the workspace's metric-definition versions, newest first."""
    from services.scoring.catalog.service import MAX_PAGE, list_versions

    versions = every_item(list_versions, workspace, limit=MAX_PAGE, refusals=REFUSALS)
    if not versions:
        typer.echo(
            f"no metric definitions in {workspace}: it is scored with the reference ones "
            "(milepost scoring metrics publish FILE)"
        )
    for item in versions:
        mark = "current" if item.current else ""
        typer.echo(
            f"v{item.version}\t{mark}\t{item.metric_count} metrics\tNorth Star {item.north_star}"
            f"\t{item.source_name}\tpublished {item.published_at:%Y-%m-%d %H:%M} by {item.published_by}"
        )


@metrics_app.command("show")
def metrics_show(
    version: Annotated[int | None, typer.Argument(help="A version (default: current).")] = None,
    workspace: WorkspaceName = "demo",
    source: Annotated[bool, typer.Option("--source", help="Print the file as published.")] = False,
) -> None:
    """Show one version of the workspace's metric definitions: each metric, its kind and
    windows, and the North Star."""
    from services.scoring.catalog.service import show

    detail: VersionDetail = in_workspace(
        lambda session, _clock, workspace_id: show(session, workspace_id, version),
        workspace,
        refusals=REFUSALS,
    )
    if source:
        typer.echo(detail.source, nl=False)
        return
    info = detail.info
    typer.echo(
        f"metric definitions v{info.version} in {workspace}"
        f"{' (current)' if info.current else ''}: {info.source_name}, "
        f"published {info.published_at:%Y-%m-%d %H:%M} by {info.published_by}"
    )
    for metric in detail.definitions.metrics:
        windows = ",".join(w.name for w in metric.windows)
        flags = [
            flag
            for flag, on in (
                ("north star", metric.north_star),
                ("feature", metric.feature),
                ("contact", metric.contact),
            )
            if on
        ]
        typer.echo(
            f"  {metric.id}\t{metric.kind.value}\t{windows or '-'}\t{metric.name}"
            + (f"\t[{', '.join(flags)}]" if flags else "")
        )
