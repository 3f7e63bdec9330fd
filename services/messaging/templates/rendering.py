"""Templates in a Jinja2 sandbox, chosen by locale. Pure.

A template is a mapping of locale -> Jinja2 source. Rendering uses a
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` (no private attributes, no unsafe
callables, no changing lists or mappings: one trigger's data serves every recipient) with strict undefined names, so a typo is an error rather than an empty string.
Every failure, compiling or rendering, raises :class:`TemplateFailed` with a reason an
operator can read; callers fail that one delivery with it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.messaging.errors import TemplateFailed

FALLBACK_LOCALE = "en"
MAX_RENDERED_CHARS = 100_000
_ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_COMPILED: OrderedDict[str, Template] = OrderedDict()
_CACHE_SIZE = 2048


@dataclass(frozen=True, slots=True)
class Rendered:
    locale: str
    subject: str
    body: str


def choose_locale(available: Collection[str], wanted: str | None, default: str) -> str:
    """The variant for ``wanted``: the same locale, else one of the same language
    (``zh`` or ``zh-TW`` -> ``zh-CN``), else ``default``, else ``en``, else the first by name."""
    if not available:
        raise TemplateFailed("the template has no locale variant")
    if wanted:
        by_lower = {locale.lower(): locale for locale in available}
        if wanted.lower() in by_lower:
            return by_lower[wanted.lower()]
        language = wanted.split("-")[0].lower()
        same = sorted(loc for loc in available if loc.split("-")[0].lower() == language)
        if same:
            return same[0]
    for candidate in (default, FALLBACK_LOCALE):
        if candidate in available:
            return candidate
    return sorted(available)[0]


def compile_template(source: str) -> Template:
    """The compiled template (cached by its source); :class:`TemplateFailed` naming the
    line of a syntax error."""
    found = _COMPILED.get(source)
    if found is not None:
        _COMPILED.move_to_end(source)
        return found
    try:
        found = _ENVIRONMENT.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateFailed(f"line {exc.lineno}: {exc.message}") from exc
    _COMPILED[source] = found
    while len(_COMPILED) > _CACHE_SIZE:
        _COMPILED.popitem(last=False)
    return found


def render_text(source: str, context: Mapping[str, Any]) -> str:
    """``source`` rendered with ``context``; :class:`TemplateFailed` with the reason."""
    template = compile_template(source)
    try:
        text = template.render(**context)
    except TemplateError as exc:  # undefined names and sandbox refusals included
        raise TemplateFailed(f"{type(exc).__name__}: {exc}") from exc
    except (ArithmeticError, TypeError, ValueError, LookupError) as exc:
        raise TemplateFailed(f"{type(exc).__name__}: {exc}") from exc
    if len(text) > MAX_RENDERED_CHARS:
        raise TemplateFailed(f"rendered text is {len(text)} characters, over {MAX_RENDERED_CHARS}")
    return text


def render_message(
    subject: Mapping[str, str],
    body: Mapping[str, str],
    context: Mapping[str, Any],
    *,
    locale: str | None,
    default_locale: str,
) -> Rendered:
    """Subject and body in the locale chosen for ``locale`` (the body's variants decide)."""
    chosen = choose_locale(body.keys(), locale, default_locale)
    subject_locale = choose_locale(subject.keys(), chosen, default_locale) if subject else chosen
    return Rendered(
        chosen,
        render_text(subject[subject_locale], context).strip() if subject else "",
        render_text(body[chosen], context),
    )


SAMPLE_CONTEXT: Mapping[str, Any] = {
    "account": {"id": "acme", "name": "Acme Corp"},
    "contact": {
        "id": "u-1001",
        "name": "Li Wei",
        "email": "li.wei@acme.example",
        "roles": ["decision_maker", "admin"],
        "locale": "zh-CN",
    },
    "role": "admin",
    "trigger": {
        "trigger_id": "sample-trigger",
        "kind": "node_overdue",
        "path_id": "platform-merchant",
        "stage": "account_setup",
        "node": "complete_profile",
        "reason": "Day 1: complete the store profile: overdue",
        "occurred_at": datetime(2026, 11, 20, 9, 30, tzinfo=UTC).isoformat(),
        "payload": {"from": "L2", "to": "L3", "benefits": [{"id": "ads_credit", "name": "Ads"}]},
    },
    "reasons": [
        {
            "signal": "data_export",
            "severity": "high",
            "sentence": "A large data export: 40,000 rows exported in the last 7 days, none "
            "in the usual week. Data may be being pulled out.",
            "measure": 40.0,
            "threshold": 5.0,
            "figures": {"rows_7d": 40000, "weekly_average": 0},
        }
    ],
    "unsubscribe_url": "https://milepost.example/api/messaging/unsubscribe?token=sample",
}
"""What a preview renders with when no sample data is given: the names a template sees."""
