"""The image, the compose stack, the alert rules, the dashboard and the chart's README.

None of these can run here (no container engine, no Prometheus); they are checked for what
a broken edit would break. With the ``docker compose`` plugin installed, the compose file
also goes through ``docker compose config``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from services.cli import app
from tests.availability import unavailable
from tests.deploy.conftest import CHART, REPO

DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
COMPOSE = REPO / "deploy" / "compose.yaml"
RULES = REPO / "deploy" / "prometheus" / "milepost.rules.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "milepost.json"
RUNBOOK = REPO / "docs" / "operations.md"
SERVICES = ("ingest", "engine", "scoring", "messaging")

PENDING_METRICS = {
    "milepost_messaging_deliveries_total": "delivery attempts by channel and status",
    "milepost_messaging_consumer_lag": "records waiting per group, topic and partition",
}
"""Metrics the alerts and dashboard use that the messaging service is to export."""


# -- image ---------------------------------------------------------------------------


def _stages(text: str) -> list[tuple[str, list[str]]]:
    """The Dockerfile's stages: (FROM line, instructions), line continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[tuple[str, list[str]]] = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.upper().startswith("FROM "):
            stages.append((stripped, []))
        elif stages:
            stages[-1][1].append(stripped)
    return stages


def test_the_image_is_built_in_one_stage_and_run_from_a_slim_one() -> None:
    text = DOCKERFILE.read_text()
    stages = _stages(text)
    assert len(stages) == 2
    (builder, build_steps), (final, run_steps) = stages
    assert builder.endswith("AS builder")
    assert final.endswith("AS runtime")
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert any("pip wheel" in step for step in build_steps)
    assert any(step.startswith("COPY --from=builder /opt/milepost") for step in run_steps)
    for step in run_steps:
        assert not re.search(r"apt-get install|build-essential|gcc|\bpip install\b", step), step
    (user,) = [step for step in run_steps if step.startswith("USER ")]
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) > 0
    assert 'ENTRYPOINT ["milepost"]' in run_steps
    assert any("MILEPOST_DATA_DIR=/tmp/" in step for step in run_steps)


def test_the_build_context_holds_what_the_wheel_needs_only() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ignored[ignored.index("*")] == "*"
    for needed in ("pyproject.toml", "README.md", "shared/", "services/"):
        assert f"!{needed}" in ignored
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.MULTILINE)
    for sources in copied:
        for source in sources.split():
            assert f"!{source}" in ignored or f"!{source}/" in ignored, source


def _cli_commands() -> set[str]:
    """Top-level commands and command groups (``milepost scoring`` runs the service when
    given no subcommand)."""
    commands = {
        command.name or getattr(command.callback, "__name__", "")
        for command in app.registered_commands
    }
    return commands | {group.name for group in app.registered_groups if group.name}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_a_milepost_command(service: str) -> None:
    """The image's entrypoint is ``milepost``; compose and the chart run these commands."""
    assert service in _cli_commands()


# -- compose -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_runs_kafka_in_kraft_mode_postgres_and_a_mail_sink(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    for name in ("kafka", "postgres", "mailpit"):
        assert services[name]["healthcheck"]["test"], name


def test_compose_services_wait_for_healthy_dependencies_and_the_setup(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    setup = services["setup"]
    assert "milepost db upgrade && milepost kafka ensure-topics" in setup["command"][0]
    assert setup["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert setup["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in SERVICES:
        service = services[name]
        assert service["command"] == [name]
        assert service["depends_on"]["setup"]["condition"] == "service_completed_successfully"
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["read_only"] is True
        assert service["tmpfs"] == ["/tmp"]
        assert service["environment"]["MILEPOST_BUS"] == "kafka"
    assert services["messaging"]["depends_on"]["mailpit"]["condition"] == "service_healthy"
    assert services["messaging"]["environment"]["MILEPOST_MESSAGING_SMTP_HOST"] == "mailpit"


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and _succeeds([docker, "compose", "version"]):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose") or _cached("docker-compose")
    return [standalone] if standalone else None


def _succeeds(command: list[str]) -> bool:
    result = subprocess.run(command, capture_output=True, check=False, timeout=30)  # noqa: S603
    return result.returncode == 0


ADMIN_TOKENS = {
    f"MILEPOST_{name.upper()}_ADMIN_TOKEN": f"{name}-admin-token-from-the-environment"
    for name in ("engine", "scoring", "messaging")
}
SECRETS = {**ADMIN_TOKENS, "MILEPOST_MESSAGING_WEBHOOK_SECRET": "whsec_c2lnbmluZy1zZWNyZXQ="}
"""Every secret the compose file takes from the environment, with a value to give it."""


def test_compose_secrets_come_from_the_environment_with_no_fallback(
    compose: dict[str, Any],
) -> None:
    for variable in SECRETS:
        service = compose["services"][variable.split("_")[1].lower()]
        value = service["environment"][variable]
        assert value.startswith(f"${{{variable}:?"), value  # required: no `:-fallback`
        assert "openssl rand" in value


def _compose_config(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = _compose_command()
    if command is None:
        unavailable("docker compose is not installed (`make compose` builds it)")
    environment = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(  # noqa: S603 - docker compose found above
        [*command, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**environment, **extra_env},
    )


def test_docker_compose_accepts_the_file() -> None:
    result = _compose_config(SECRETS)
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_to_start_without_admin_tokens() -> None:
    # Only the admin tokens missing: compose names one of the missing variables, in an
    # order of its own.
    webhook_secret = "MILEPOST_MESSAGING_WEBHOOK_SECRET"
    result = _compose_config({webhook_secret: SECRETS[webhook_secret]})
    assert result.returncode != 0
    assert "ADMIN_TOKEN" in result.stderr
    assert "set it to a random admin token" in result.stderr


def test_docker_compose_refuses_to_start_without_a_webhook_secret() -> None:
    result = _compose_config(ADMIN_TOKENS)
    assert result.returncode != 0
    assert "MILEPOST_MESSAGING_WEBHOOK_SECRET" in result.stderr


# -- alerts and dashboard ------------------------------------------------------------


def _exported_metrics() -> set[str]:
    """Every sample name the services can export (prometheus_client adds the suffixes)."""
    names: set[str] = set()
    for folder in ("services", "shared"):
        for source in (REPO / folder).rglob("*.py"):
            for base in re.findall(r'"(milepost_[a-z0-9_]+)"', source.read_text()):
                stem = base.removesuffix("_total")
                names |= {base, f"{stem}_total", f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return names


def _metric_names(expression: str) -> set[str]:
    """Metric names an expression reads (recording rules use ``:`` and are excluded)."""
    without_strings = re.sub(r'"[^"]*"', '""', expression)
    return set(re.findall(r"\b(milepost_[a-z0-9_]+)\b", without_strings))


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _dashboard_expressions() -> Iterator[str]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]


def test_every_metric_the_rules_and_dashboard_read_is_exported() -> None:
    exported = _exported_metrics()
    expressions = [rule["expr"] for rule in _rules()] + list(_dashboard_expressions())
    # The lag recording rule names its metrics by a regular expression.
    read = set().union(*(_metric_names(e) for e in expressions))
    read |= {f"milepost_{s}_consumer_lag" for s in ("engine", "scoring", "messaging")}
    missing = read - exported - set(PENDING_METRICS)
    assert not missing


def test_recording_rules_are_defined_before_use_and_alerts_are_documented() -> None:
    rules = _rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    alerts = [rule for rule in rules if "alert" in rule]
    assert {a["alert"] for a in alerts} >= {
        "MilepostConsumerLagGrowing",
        "MilepostDeadLetters",
        "MilepostDeliveryFailureRate",
        "MilepostIngest5xx",
        "MilepostTimerFireLag",
    }
    for rule in rules:
        assert set(re.findall(r"milepost:[a-z0-9_:]+", rule["expr"])) <= recorded
        assert rule["expr"].count("(") == rule["expr"].count(")")
    for alert in alerts:
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["annotations"]["summary"]
        assert alert["annotations"]["description"]
        anchor = alert["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor == alert["alert"].lower()
        assert anchor in headings, f"docs/operations.md has no section {alert['alert']}"


def test_the_dashboard_reads_prometheus_through_its_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "milepost-overview"
    (variable,) = dashboard["templating"]["list"]
    assert variable == {**variable, "name": "datasource", "type": "datasource"}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"]
        for target in panel["targets"]:
            assert set(re.findall(r"milepost:[a-z0-9_:]+", target["expr"])) <= recorded


def test_the_plain_files_are_the_charts_own() -> None:
    """One source: deploy/prometheus and deploy/grafana link to the chart's files."""
    assert RULES.resolve() == (CHART / "files" / "milepost.rules.yaml").resolve()
    assert DASHBOARD.resolve() == (CHART / "files" / "milepost.json").resolve()


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool") or _cached("promtool")
    if promtool is None:
        unavailable("promtool is not installed (`make promtool` builds it)")
    result = subprocess.run(  # noqa: S603 - promtool found above
        [promtool, "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _cached(tool: str) -> str | None:
    path = REPO / ".cache" / "bin" / tool
    return str(path) if path.exists() else None


# -- chart README --------------------------------------------------------------------


def test_the_chart_readme_is_generated_from_the_current_values() -> None:
    result = subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(REPO / "deploy" / "helm" / "generate_readme.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_value_is_documented_in_the_readme() -> None:
    sys.path.insert(0, str(REPO / "deploy" / "helm"))
    try:
        from generate_readme import documented_keys
    finally:
        sys.path.pop(0)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = {item.key for item in documented_keys((CHART / "values.yaml").read_text())}

    def leaves(node: Any, path: str) -> Iterator[str]:
        if path in documented:
            return
        if isinstance(node, dict) and node:
            for key, child in node.items():
                yield from leaves(child, f"{path}.{key}" if path else key)
        else:
            yield path

    assert not list(leaves(values, ""))
