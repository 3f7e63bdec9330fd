"""The playbook file format (YAML), validated by pydantic. See docs/messaging.md.

A playbook has rules; each rule matches triggers (kind, path, stage, node, tier, risk level)
and lists steps. A step goes to roles of the account (by default the roles the trigger
targets), falls back to other roles when nobody holds them, and either sends a template on
the first channel that reaches the contact, or creates a task for the account owner with a
due date and an escalation. A step on the ``webhook`` channel posts a signed
``message.created`` event to its ``url`` (https), or to ``MILEPOST_MESSAGING_WEBHOOK_URL``
when it names none; ``url`` is for the webhook channel only: chat apps post to their
configured robot, whose signing secret belongs to that robot. Validation checks the shape, then the meaning: step ids are
unique, every template exists and compiles in every locale and has the default locale;
every problem is reported at once.
Each problem carries its location, so the loader reports the file, line and field.

A pure model: it imports no web, database or bus library (the API's bodies are in
:mod:`services.messaging.playbooks.schemas`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.messaging.errors import TemplateFailed
from services.messaging.templates.rendering import compile_template
from shared.contracts.scores import RiskLevel
from shared.contracts.triggers import Audience, TriggerKind
from shared.definitions import DefinitionInvalid, Location
from shared.definitions.fields import Duration, FileModel, Identifier, Text
from shared.durations import parse_duration

Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
TemplateText = Annotated[str, StringConstraints(min_length=1, max_length=50_000)]
Channel = Literal["email", "feishu", "dingtalk", "wecom", "slack", "in_app", "webhook"]
Priority = Literal["low", "normal", "high", "critical"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
TargetRoles = Literal["target_roles"]
TARGET_ROLES: TargetRoles = "target_roles"
"""In a step's ``to``: the roles the trigger targets."""
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "critical")
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _duration(value: str | None, *, zero: bool = False) -> str | None:
    if value is None:
        return None
    seconds = parse_duration(value).total_seconds()
    if seconds < 0 or (seconds == 0 and not zero):
        raise ValueError("a duration must be longer than zero")
    return value


def _https_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("expected an https URL, e.g. https://hooks.example.com/milepost")
    return value


def _clock(value: str) -> str:
    if not _CLOCK.fullmatch(value):
        raise ValueError("expected a time of day as HH:MM, e.g. 09:00")
    return value


class Match(FileModel):
    """Which triggers a rule takes; an empty list accepts any value."""

    kinds: list[TriggerKind] = Field(default_factory=list)
    paths: list[Identifier] = Field(default_factory=list)
    stages: list[Identifier] = Field(default_factory=list)
    nodes: list[Identifier] = Field(default_factory=list)
    tiers: list[Annotated[str, StringConstraints(min_length=1, max_length=32)]] = Field(
        default_factory=list,
        description="The tier entered (tier_changed) or the account's tier in the payload.",
    )
    risk_levels: list[RiskLevel] = Field(
        default_factory=list,
        description="The level reached (risk_changed) or the risk level in the payload.",
    )
    actions: list[Literal["nudge", "task"]] = Field(
        default_factory=list, description="An escalation's action (from the growth path)."
    )


class SendWindow(FileModel):
    """Local hours (in the contact's timezone) when the step may be sent; outside them the
    delivery is deferred to the next opening, never dropped."""

    start: str = "09:00"
    end: str = "18:00"
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)

    _check_clock = field_validator("start", "end")(_clock)

    @model_validator(mode="after")
    def _start_before_end(self) -> Self:
        if self.start >= self.end:
            raise DefinitionInvalid(("end",), f"must be after start ({self.start})")
        return self

    @property
    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    @property
    def end_time(self) -> time:
        return time.fromisoformat(self.end)


class TaskSpec(FileModel):
    """A task for the account owner: the offline visit or call the method insists on."""

    title: TemplateText = Field(description="A template, rendered like a message body.")
    description: TemplateText | None = None
    due: Duration = Field(description="Due this long after the trigger.")
    escalate_after: Duration | None = Field(
        default=None, description="Escalate when still open this long after the due date."
    )
    escalate_to: Literal["account_owner_manager", "decision_maker"] = "account_owner_manager"

    _check_due = field_validator("due")(lambda v: _duration(v))
    _check_escalation = field_validator("escalate_after")(lambda v: _duration(v))

    @property
    def due_delta(self) -> timedelta:
        return parse_duration(self.due)

    @property
    def escalation_delta(self) -> timedelta | None:
        return None if self.escalate_after is None else parse_duration(self.escalate_after)


def _target_roles() -> list[Audience | TargetRoles]:
    return [TARGET_ROLES]


class Step(FileModel):
    id: Identifier
    to: list[Audience | TargetRoles] = Field(
        default_factory=lambda: _target_roles(),
        min_length=1,
        description="Roles to reach; target_roles means the roles the trigger targets.",
    )
    fallback: list[Audience] = Field(
        default_factory=list, description="Roles to reach, in order, when nobody holds `to`."
    )
    channels: list[Channel] = Field(
        default_factory=list,
        max_length=6,
        description="In order: the first the contact can be reached on and has not bounced.",
    )
    template: Identifier | None = None
    url: Annotated[str, StringConstraints(max_length=2000)] | None = Field(
        default=None,
        description="The https URL the webhook channel posts to; default: "
        "MILEPOST_MESSAGING_WEBHOOK_URL.",
    )
    task: TaskSpec | None = None
    delay: Duration | None = Field(default=None, description="Send this long after the trigger.")
    send_window: SendWindow | None = None
    priority: Priority = "normal"
    category: Identifier = Field(
        default="lifecycle", description="Consent and unsubscribe apply per category."
    )
    cooldown: Duration | None = Field(
        default=None,
        description="Plan this step for an account at most once per this long: another "
        "trigger's message or task of the step within it is suppressed.",
    )

    _check_delay = field_validator("delay")(lambda v: _duration(v, zero=True))
    _check_cooldown = field_validator("cooldown")(lambda v: _duration(v))
    _check_url = field_validator("url")(_https_url)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.task is not None:
            if self.template is not None or self.channels:
                raise DefinitionInvalid(("task",), "a task step has no template or channels")
        elif self.template is None or not self.channels:
            raise DefinitionInvalid(
                ("template" if self.template is None else "channels",),
                "a message step needs a template and at least one channel (or a task)",
            )
        if self.url is not None and "webhook" not in self.channels:
            raise DefinitionInvalid(("url",), "url is for the webhook channel: add webhook")
        return self

    @property
    def delay_delta(self) -> timedelta:
        return timedelta() if self.delay is None else parse_duration(self.delay)

    @property
    def cooldown_delta(self) -> timedelta | None:
        return None if self.cooldown is None else parse_duration(self.cooldown)


class Rule(FileModel):
    id: Identifier
    description: Text | None = None
    match: Match = Field(default_factory=Match)
    steps: list[Step] = Field(min_length=1, max_length=20)


class TemplateSpec(FileModel):
    """A message template: subject and body, each a mapping of locale -> Jinja2 source."""

    subject: dict[Locale, TemplateText] = Field(default_factory=dict)
    body: dict[Locale, TemplateText] = Field(min_length=1)


class PlaybookFile(FileModel):
    """A playbook as written by an operator."""

    id: Identifier
    name: Text
    description: Text | None = None
    default_locale: Locale = "en"
    rules: list[Rule] = Field(min_length=1, max_length=100)
    templates: dict[Identifier, TemplateSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _meaning(self) -> Self:
        problems = [*self._template_problems(), *self._step_problems()]
        if problems:
            raise DefinitionInvalid.every(problems)
        return self

    def _template_problems(self) -> Iterator[DefinitionInvalid]:
        for name, spec in self.templates.items():
            for part in ("subject", "body"):
                variants: dict[str, str] = getattr(spec, part)
                if part == "body" and self.default_locale not in variants:
                    yield DefinitionInvalid(
                        ("templates", name, part),
                        f"needs a variant in the default locale {self.default_locale}",
                    )
                for locale, source in variants.items():
                    yield from _template_problem(("templates", name, part, locale), source)

    def _step_problems(self) -> Iterator[DefinitionInvalid]:
        seen: set[str] = set()
        for r, rule in enumerate(self.rules):
            for s, step in enumerate(rule.steps):
                at = ("rules", r, "steps", s)
                if step.id in seen:
                    yield DefinitionInvalid((*at, "id"), f"step id {step.id!r} is used twice")
                seen.add(step.id)
                if step.template is not None and step.template not in self.templates:
                    yield DefinitionInvalid(
                        (*at, "template"), f"no template {step.template!r} in templates"
                    )
                if step.task is not None:
                    yield from _template_problem((*at, "task", "title"), step.task.title)
                    if step.task.description is not None:
                        description = step.task.description
                        yield from _template_problem((*at, "task", "description"), description)


def _template_problem(location: Location, source: str) -> Iterator[DefinitionInvalid]:
    """The template's compile error, placed at the start of its line in ``source``."""
    try:
        compile_template(source)
    except TemplateFailed as exc:
        offset = None
        if exc.line is not None:
            before = "".join(source.splitlines(keepends=True)[: exc.line - 1])
            rest = source[len(before) :]
            offset = len(before) + len(rest) - len(rest.lstrip(" \t")) if rest.strip() else None
        yield DefinitionInvalid(location, str(exc), offset=offset)


@dataclass(frozen=True, slots=True)
class PublishedPlaybook:
    """The current version of one playbook, as the trigger worker runs it."""

    workspace_id: str
    playbook_id: str
    version: int
    playbook: PlaybookFile
