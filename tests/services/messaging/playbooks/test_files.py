"""Playbook files: the reference playbooks load and fit their growth paths; every problem
names the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.messaging.playbooks.files import PlaybookFile
from services.messaging.playbooks.service import REFERENCE_PLAYBOOKS, read_playbook
from services.node_engine.paths.compiled import compile_path
from services.node_engine.paths.files import GrowthPathFile
from services.node_engine.paths.service import REFERENCE_PATHS
from shared.definitions import DefinitionError, load_definition

MINIMAL = """\
id: demo
name: Demo
rules:
  - id: overdue
    match: {kinds: [node_overdue]}
    steps:
      - id: remind
        channels: [email]
        template: reminder
templates:
  reminder:
    body: {en: "Hello {{ contact.name }}"}
"""


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(DefinitionError) as caught:
        read_playbook("demo.yaml", text)
    assert all(p.file == "demo.yaml" for p in caught.value.problems)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


def test_a_minimal_playbook_loads_with_its_defaults() -> None:
    playbook = read_playbook("demo.yaml", MINIMAL)
    step = playbook.rules[0].steps[0]
    assert (step.to, step.priority, step.category, playbook.default_locale) == (
        ["target_roles"],
        "normal",
        "lifecycle",
        "en",
    )


@pytest.mark.parametrize("name", ["platform-merchant", "saas-account"])
def test_each_reference_playbook_names_only_stages_nodes_and_tiers_of_its_path(name: str) -> None:
    playbook = load_definition(REFERENCE_PLAYBOOKS / f"{name}.yaml", PlaybookFile)
    path = compile_path(
        load_definition(REFERENCE_PATHS / f"{name}.yaml", GrowthPathFile), version=1
    )
    tiers = {level.id for level in path.tiers.levels} if path.tiers else set()
    for rule in playbook.rules:
        assert rule.match.paths == [path.id]
        assert set(rule.match.stages) <= set(path.stages_by_id), rule.id
        assert set(rule.match.nodes) <= set(path.nodes_by_id), rule.id
        assert set(rule.match.tiers) <= tiers, rule.id
    for template in playbook.templates.values():
        assert {"en", "zh-CN"} <= set(template.body), "both reference locales"
    assert any(step.task for rule in playbook.rules for step in rule.steps)


def test_a_wrong_value_names_its_line_and_field() -> None:
    text = MINIMAL.replace("channels: [email]", "channels: [pigeon]")
    [(line, field, message)] = problems(text)
    assert (line, field) == (8, "rules[0].steps[0].channels[0]")
    assert "pigeon" in message


def test_a_missing_template_is_reported_at_the_step() -> None:
    text = MINIMAL.replace("template: reminder", "template: nowhere")
    assert problems(text) == [
        (9, "rules[0].steps[0].template", "no template 'nowhere' in templates")
    ]


def test_a_template_syntax_error_names_the_variant() -> None:
    text = MINIMAL.replace('{en: "Hello {{ contact.name }}"}', '{en: "Hello {% if %}"}')
    [(line, field, message)] = problems(text)
    assert (line, field) == (12, "templates.reminder.body.en")
    assert message.startswith("line 1:")


def test_the_default_locale_must_have_a_body() -> None:
    text = MINIMAL.replace("name: Demo\n", "name: Demo\ndefault_locale: zh-CN\n")
    [(_line, field, message)] = problems(text)
    assert field == "templates.reminder.body"
    assert "default locale zh-CN" in message


def test_a_step_is_a_message_or_a_task() -> None:
    text = MINIMAL.replace("        template: reminder\n", "")
    [(_line, field, message)] = problems(text)
    assert field == "rules[0].steps[0].template"
    assert "needs a template" in message
    task = MINIMAL.replace(
        "        template: reminder\n", "        task: {title: Call, due: P1D}\n"
    )
    [(_line, field, message)] = problems(task)
    assert field == "rules[0].steps[0].task"


WEBHOOK = MINIMAL.replace("channels: [email]", "channels: [webhook]")


def test_a_webhook_step_may_name_its_https_url() -> None:
    text = WEBHOOK.replace(
        "        template: reminder\n",
        "        template: reminder\n        url: https://hooks.acme.example/milepost\n",
    )
    step = read_playbook("demo.yaml", text).rules[0].steps[0]
    assert (step.channels, step.url) == (["webhook"], "https://hooks.acme.example/milepost")
    assert read_playbook("demo.yaml", WEBHOOK).rules[0].steps[0].url is None


@pytest.mark.parametrize("url", ["http://hooks.acme.example/x", "hooks.acme.example", "https://"])
def test_a_step_url_must_be_https(url: str) -> None:
    text = WEBHOOK.replace(
        "        template: reminder\n", f"        template: reminder\n        url: {url}\n"
    )
    [(line, field, message)] = problems(text)
    assert (line, field) == (10, "rules[0].steps[0].url")
    assert message.startswith("expected an https URL")


def test_a_step_url_needs_the_webhook_channel() -> None:
    text = MINIMAL.replace(
        "        template: reminder\n",
        "        template: reminder\n        url: https://hooks.acme.example/x\n",
    )
    assert problems(text) == [
        (10, "rules[0].steps[0].url", "url is for the webhook channel: add webhook")
    ]


def test_duplicate_step_ids_and_unknown_keys_are_reported() -> None:
    twice = MINIMAL + ""
    twice = twice.replace(
        "templates:\n",
        "  - id: again\n    steps:\n      - {id: remind, channels: [email], template: reminder}\n"
        "templates:\n",
    )
    assert problems(twice) == [(12, "rules[1].steps[0].id", "step id 'remind' is used twice")]
    typo = MINIMAL.replace("    match:", "    mtach:")
    [(line, field, message)] = problems(typo)
    assert (line, field) == (5, "rules[0].mtach")
    assert "Extra inputs" in message


def test_a_send_window_must_open_before_it_closes() -> None:
    text = MINIMAL.replace(
        "        template: reminder\n",
        '        template: reminder\n        send_window: {start: "18:00", end: "09:00"}\n',
    )
    [(line, field, message)] = problems(text)
    assert (line, field) == (10, "rules[0].steps[0].send_window.end")
    assert "after start" in message


def test_the_file_on_disk_is_named_in_problems(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text(MINIMAL.replace("kinds: [node_overdue]", "kinds: [node_exploded]"))
    with pytest.raises(DefinitionError) as caught:
        load_definition(file, PlaybookFile)
    assert str(caught.value).startswith(f"{file}:5:")
    assert "match.kinds[0]" in str(caught.value)


PLAYBOOK_MISTAKES = """\
id: trial-outreach
name: Trial outreach
rules:
  - id: welcome
    match: {kinds: [stage_entered]}
    steps:
      - id: welcome
        channels: [webhook]
        url: http://hooks.example.com/milepost
        template: welcome
      - id: tips
        channels: [email]
        template: tips
templates:
  welcome:
    body:
      en: "Welcome, {{ contact.name }}"
      zh-CN: |
        欢迎 {{ contact.name }}
        {% if contact.locale %}
          {{ contact.locale }
        {% endif %}
"""


def test_every_mistake_is_reported_in_one_run_at_its_line_and_column() -> None:
    with pytest.raises(DefinitionError) as caught:
        read_playbook("trial.yaml", PLAYBOOK_MISTAKES)
    found = [(p.line, p.column, p.field, p.message[:30]) for p in caught.value.problems]
    assert found == [
        (9, 14, "rules[0].steps[0].url", "expected an https URL, e.g. ht"),
        (13, 19, "rules[0].steps[1].template", "no template 'tips' in template"),
        (21, 11, "templates.welcome.body.zh-CN", "line 3: unexpected '}'"),
    ]


def test_a_step_may_have_a_cooldown_longer_than_zero() -> None:
    cooled = read_playbook(
        "demo.yaml",
        MINIMAL.replace("template: reminder", "template: reminder\n        cooldown: P7D"),
    )
    assert cooled.rules[0].steps[0].cooldown == "P7D"
    assert read_playbook("demo.yaml", MINIMAL).rules[0].steps[0].cooldown_delta is None
    ((line, field, message),) = problems(
        MINIMAL.replace("template: reminder", "template: reminder\n        cooldown: PT0S")
    )
    assert (line, field) == (10, "rules[0].steps[0].cooldown")
    assert "longer than zero" in message
