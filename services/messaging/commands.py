"""``milepost messaging``'s commands (the service itself is run by :mod:`services.cli`) and
``milepost playbooks`` (``validate``, ``publish``, ``list``, ``show``)."""

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
from services.messaging.errors import MessagingError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from services.messaging.playbooks.files import PublishedPlaybook
    from services.messaging.playbooks.service import VersionDetail
    from services.messaging.simulation.service import OutreachSimulation

REFUSALS: Refusals = (MessagingError,)

messaging_app = typer.Typer(
    help="The messaging service alone: contacts from milepost.events, outreach planned from "
    "milepost.triggers through playbooks, and the API under /api/messaging/ (production: "
    "MILEPOST_BUS=kafka, MILEPOST_DATABASE_URL; MILEPOST_MESSAGING_* settings).",
    invoke_without_command=True,
)
playbooks_app = typer.Typer(
    help="Playbooks (trigger x role -> channel + template, and tasks): validate, publish, "
    "list and show versions.",
    no_args_is_help=True,
)


def _playbook_summary(file: Path) -> str:
    """A valid playbook file's id and size."""
    from services.messaging.playbooks.service import read_playbook
    from shared.definitions.document import read_definition

    playbook = read_playbook(str(file), read_definition(file))
    steps = sum(len(rule.steps) for rule in playbook.rules)
    return (
        f"{playbook.id} ({len(playbook.rules)} rules, {steps} steps, "
        f"{len(playbook.templates)} templates)"
    )


add_validate_command(playbooks_app, "playbook", _playbook_summary)


@playbooks_app.command("publish")
def playbooks_publish(
    file: Annotated[Path, typer.Argument(help="The playbook YAML file.")],
    workspace: WorkspaceName = "demo",
) -> None:
    """Publish FILE as the next version of its playbook and make it current.

    Refused when the file is invalid or has the same content as the current version.
    """
    from services.messaging.playbooks.service import publish

    info = publish_file(publish, file, workspace, refusals=REFUSALS)
    typer.echo(
        f"published {info.playbook_id} v{info.version} in {workspace} (digest {info.digest[:12]})"
    )


@playbooks_app.command("list")
def playbooks_list(workspace: WorkspaceName = "demo") -> None:
    """List the workspace's playbooks with their current version."""
    from services.messaging.playbooks.service import MAX_PAGE, list_playbooks

    playbooks = every_item(list_playbooks, workspace, limit=MAX_PAGE, refusals=REFUSALS)
    if not playbooks:
        typer.echo(f"no playbooks in {workspace} yet: milepost playbooks publish FILE")
    for item in playbooks:
        typer.echo(
            f"{item.playbook_id}\tv{item.current.version}\t{item.current.name}\t"
            f"published {item.current.published_at:%Y-%m-%d %H:%M} by {item.current.published_by}"
        )


@playbooks_app.command("show")
def playbooks_show(
    playbook_id: Annotated[str, typer.Argument(help="The playbook's id.")],
    version: Annotated[int | None, typer.Option(help="A version (default: current).")] = None,
    workspace: WorkspaceName = "demo",
    source: Annotated[bool, typer.Option("--source", help="Print the file as published.")] = False,
) -> None:
    """Show one version of a playbook: each rule's match and its steps (roles, fallback,
    channels, template or task, timing, priority and category)."""
    from services.messaging.playbooks.service import show

    detail: VersionDetail = in_workspace(
        lambda session, _clock, workspace_id: show(session, workspace_id, playbook_id, version),
        workspace,
        refusals=REFUSALS,
    )
    if source:
        typer.echo(detail.source, nl=False)
        return
    info, playbook = detail.info, detail.playbook
    current = " (current)" if detail.is_current else ""
    typer.echo(f"{info.playbook_id} v{info.version}{current}: {info.name}")
    typer.echo(
        f"  published {info.published_at:%Y-%m-%d %H:%M} by {info.published_by} from {info.source_name}"
    )
    for rule in playbook.rules:
        match = rule.match.model_dump(exclude_defaults=True, mode="json")
        conditions = "; ".join(f"{k} {', '.join(v)}" for k, v in match.items()) or "every trigger"
        typer.echo(f"  rule {rule.id}: {conditions}")
        for step in rule.steps:
            if step.task is not None:
                escalation = (
                    f", escalated to {step.task.escalate_to} {step.task.escalate_after} later"
                    if step.task.escalate_after
                    else ""
                )
                typer.echo(
                    f"    step {step.id}: task for the account owner, due {step.task.due}"
                    f"{escalation} ({step.priority})"
                )
                continue
            roles = "/".join(str(role) for role in step.to)
            fallback = (
                f" (else {'/'.join(r.value for r in step.fallback)})" if step.fallback else ""
            )
            timing = f", after {step.delay}" if step.delay else ""
            if step.send_window:
                timing += f", {step.send_window.start}-{step.send_window.end} local"
            typer.echo(
                f"    step {step.id}: {roles}{fallback} by {' > '.join(step.channels)}, "
                f"template {step.template}{timing} ({step.priority}, {step.category})"
            )


def outreach_simulation(workspace: str, files: list[Path]) -> OutreachSimulation:
    """An outreach simulation with the playbook ``files`` (drafts, shown as version 0) or,
    without any, the workspace's current playbooks; policies from ``MILEPOST_MESSAGING_*``."""
    from services.messaging.app import policies_of
    from services.messaging.playbooks.files import PublishedPlaybook
    from services.messaging.playbooks.service import read_playbook
    from services.messaging.settings import MessagingSettings
    from services.messaging.simulation.service import OutreachSimulation
    from shared.definitions import DefinitionError
    from shared.definitions.document import read_definition

    if files:
        try:
            drafts = [read_playbook(str(file), read_definition(file)) for file in files]
        except DefinitionError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(code=1) from exc
        playbooks = [PublishedPlaybook(workspace, draft.id, 0, draft) for draft in drafts]
    else:
        catalog = in_workspace(
            lambda session, _clock, workspace_id: _current_playbooks(session, workspace_id),
            workspace,
            refusals=REFUSALS,
        )
        playbooks = list(catalog)
    return OutreachSimulation(playbooks, policies_of(MessagingSettings()))


async def _current_playbooks(
    session: AsyncSession, workspace_id: str
) -> tuple[PublishedPlaybook, ...]:
    from services.messaging.playbooks.service import load_catalog

    return (await load_catalog(session)).get(workspace_id, ())
