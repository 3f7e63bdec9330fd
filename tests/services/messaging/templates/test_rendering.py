"""Templates render in the contact's locale with fallback, inside a sandbox; every failure
is a TemplateFailed with the reason."""

from __future__ import annotations

import pytest

from services.messaging.errors import TemplateFailed, TemplateLimitExceeded
from services.messaging.templates.limits import TemplateLimits
from services.messaging.templates.rendering import (
    SAMPLE_CONTEXT,
    SlowTemplates,
    choose_locale,
    compile_template,
    render_message,
    render_text,
)

BODY = {"en": "Hello {{ contact.name }}", "zh-CN": "{{ contact.name }}，您好"}  # noqa: RUF001 (Chinese punctuation)


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [
        ("zh-CN", "zh-CN"),
        ("zh-cn", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("en-GB", "en"),
        ("fr", "en"),
        (None, "en"),
    ],
)
def test_the_locale_falls_back_to_the_language_then_the_default(
    wanted: str | None, chosen: str
) -> None:
    assert choose_locale(BODY.keys(), wanted, "en") == chosen


def test_without_the_default_or_english_the_first_variant_is_used() -> None:
    assert choose_locale(["ja", "de"], "fr", "it") == "de"


def test_a_message_renders_subject_and_body_in_the_chosen_locale() -> None:
    rendered = render_message(
        {"en": "Hi", "zh-CN": "你好"}, BODY, SAMPLE_CONTEXT, locale="zh-CN", default_locale="en"
    )
    assert (rendered.locale, rendered.subject, rendered.body) == ("zh-CN", "你好", "Li Wei，您好")  # noqa: RUF001 (Chinese punctuation)
    english = render_message({}, BODY, SAMPLE_CONTEXT, locale="de", default_locale="en")
    assert (english.locale, english.subject, english.body) == ("en", "", "Hello Li Wei")


def test_an_undefined_name_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(TemplateFailed, match="contact_name"):
        render_text("Hello {{ contact_name }}", SAMPLE_CONTEXT)


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(TemplateFailed, match="line 2"):
        compile_template("fine\n{% if %}")


def test_the_sandbox_refuses_private_attributes_unsafe_calls_and_changes() -> None:
    with pytest.raises(TemplateFailed, match=r"SecurityError|unsafe"):
        render_text("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})
    with pytest.raises(TemplateFailed):
        render_text("{{ trigger.payload.clear() }}", {"trigger": {"payload": {"a": 1}}})


def test_a_runtime_error_in_a_template_is_reported() -> None:
    with pytest.raises(TemplateFailed, match="ZeroDivisionError"):
        render_text("{{ 1 / 0 }}", {})


def test_a_template_over_the_time_limit_fails_at_once_for_a_while() -> None:
    slow = "{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateLimitExceeded, match=r"ran over 0\.1 s"):
        render_text(slow, {}, TemplateLimits(time_seconds=0.1))
    with pytest.raises(TemplateLimitExceeded, match="an earlier render of this template"):
        render_text(slow, {}, TemplateLimits(time_seconds=30))
    assert render_text("{{ 1 }}", {}, TemplateLimits(time_seconds=30)) == "1"


def test_slow_templates_are_forgotten_after_the_cooldown() -> None:
    now = [0.0]
    slow = SlowTemplates(cooldown_seconds=10, size=2, monotonic=lambda: now[0])
    slow.add("a")
    with pytest.raises(TemplateLimitExceeded):
        slow.refuse("a")
    now[0] = 10.5
    slow.refuse("a")
    slow.add("b")
    slow.add("c")
    slow.add("d")  # keeps the latest two
    now[0] = 11.0
    slow.refuse("b")
    with pytest.raises(TemplateLimitExceeded):
        slow.refuse("d")
