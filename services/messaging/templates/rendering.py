"""Templates in a Jinja2 sandbox, chosen by locale, rendered within limits. Pure.

A template is a mapping of locale -> Jinja2 source. Rendering uses a
:class:`~services.messaging.templates.sandbox.BudgetedEnvironment` (an immutable sandbox:
no private attributes, no unsafe callables, no changing lists or mappings: one trigger's
data serves every recipient) with strict undefined names, so a typo is an error rather
than an empty string, and :class:`TemplateLimits` checked while it runs: time, output,
integer size, ``range()`` and call depth.
Every failure, compiling or rendering, raises :class:`TemplateFailed` with a reason an
operator can read (:class:`TemplateLimitExceeded` naming the limit); callers fail that one
delivery with it. Rendering blocks for up to the time limit: async callers run it in a
thread (``asyncio.to_thread``); a template that went over it fails at once for a while
(:class:`SlowTemplates`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import Template, TemplateSyntaxError

from services.messaging.errors import TemplateFailed, TemplateLimitExceeded
from services.messaging.templates.limits import TemplateLimits
from services.messaging.templates.sandbox import BudgetedEnvironment, spending

FALLBACK_LOCALE = "en"
DEFAULT_LIMITS = TemplateLimits()
_ENVIRONMENT = BudgetedEnvironment()
_COMPILED: OrderedDict[str, Template] = OrderedDict()
_COMPILED_LOCK = threading.Lock()  # previews and the trigger worker render in threads
_CACHE_SIZE = 2048
SLOW_COOLDOWN_SECONDS = 300.0


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
    with _COMPILED_LOCK:
        found = _COMPILED.get(source)
        if found is not None:
            _COMPILED.move_to_end(source)
            return found
    try:
        found = _ENVIRONMENT.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateFailed(f"line {exc.lineno}: {exc.message}", line=exc.lineno) from exc
    with _COMPILED_LOCK:
        _COMPILED[source] = found
        while len(_COMPILED) > _CACHE_SIZE:
            _COMPILED.popitem(last=False)
    return found


class SlowTemplates:
    """Sources that went over the time limit lately: they fail at once for
    ``cooldown_seconds``, so a slow template costs the trigger worker its time limit once,
    not once per contact. Safe across threads; keeps the latest ``size`` sources."""

    def __init__(
        self,
        cooldown_seconds: float = SLOW_COOLDOWN_SECONDS,
        size: int = _CACHE_SIZE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cooldown_seconds = cooldown_seconds
        self.size = size
        self.monotonic = monotonic
        self._until: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def refuse(self, source: str) -> None:
        """Raise :class:`TemplateLimitExceeded` when ``source`` went over lately."""
        with self._lock:
            until = self._until.get(source)
        if until is not None and self.monotonic() < until:
            raise TemplateLimitExceeded(
                "time",
                "an earlier render of this template ran over it; it is refused for "
                f"{self.cooldown_seconds:g} s",
            )

    def add(self, source: str) -> None:
        with self._lock:
            self._until[source] = self.monotonic() + self.cooldown_seconds
            self._until.move_to_end(source)
            while len(self._until) > self.size:
                self._until.popitem(last=False)


_SLOW = SlowTemplates()


def render_text(
    source: str, context: Mapping[str, Any], limits: TemplateLimits = DEFAULT_LIMITS
) -> str:
    """``source`` rendered with ``context`` within ``limits``; :class:`TemplateFailed`
    with the reason (any error of the template's own code included)."""
    template = compile_template(source)
    _SLOW.refuse(source)
    with spending(limits):
        try:
            return template.render(**context)
        except TemplateLimitExceeded as exc:
            if exc.limit == "time":
                _SLOW.add(source)
            raise
        except TemplateFailed:
            raise
        except RecursionError as exc:
            raise TemplateLimitExceeded("depth", "calls nested too deep") from exc
        except Exception as exc:  # the template is untrusted code: any error is its own
            raise TemplateFailed(f"{type(exc).__name__}: {exc}") from exc


def render_message(
    subject: Mapping[str, str],
    body: Mapping[str, str],
    context: Mapping[str, Any],
    *,
    locale: str | None,
    default_locale: str,
    limits: TemplateLimits = DEFAULT_LIMITS,
) -> Rendered:
    """Subject and body in the locale chosen for ``locale`` (the body's variants decide),
    each rendered within ``limits``."""
    chosen = choose_locale(body.keys(), locale, default_locale)
    subject_locale = choose_locale(subject.keys(), chosen, default_locale) if subject else chosen
    return Rendered(
        chosen,
        render_text(subject[subject_locale], context, limits).strip() if subject else "",
        render_text(body[chosen], context, limits),
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
