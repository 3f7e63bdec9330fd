"""Fixtures for the deployment files: a helm binary and the chart rendered with it.

``make test`` builds helm into ``.cache/bin`` (deploy/local/tools.mk). Without it the chart
tests skip, except under CI (``CI=true``), where a missing helm fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.availability import unavailable

REPO = Path(__file__).parents[2]
CHART = REPO / "deploy" / "helm" / "milepost"
PRODUCTION = CHART / "ci" / "production-values.yaml"
KUBE_VERSION = "1.34.0"
"""The Kubernetes version the chart is rendered for and its manifests are validated against."""

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


def _helm_path() -> str | None:
    given = os.environ.get("MILEPOST_HELM")
    if given:
        return given
    built = REPO / ".cache" / "bin" / "helm"
    if built.exists():
        return str(built)
    return shutil.which("helm")


@pytest.fixture(scope="session")
def helm() -> str:
    """The helm binary; otherwise skip, or fail under CI."""
    path = _helm_path()
    if path is None:
        unavailable("helm is not available: `make helm` builds it into .cache/bin (needs Go)")
    return path


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the helm binary found above
        [helm, *args], capture_output=True, text=True, timeout=120, check=False, cwd=REPO
    )


def template_args(values: Sequence[Path], sets: Sequence[str]) -> list[str]:
    args = ["template", "milepost", str(CHART), "--kube-version", KUBE_VERSION]
    for file in values:
        args += ["--values", str(file)]
    for item in sets:
        args += ["--set", item]
    return args


@pytest.fixture(scope="session")
def render(helm: str) -> Render:
    """``render(values=[file...], sets=["key=value"...], set_files=[...])``: the manifests
    of ``helm template``, hooks included; a failed render fails the test with helm's error."""
    cache: dict[tuple[tuple[Path, ...], tuple[str, ...], tuple[str, ...]], list[Manifest]] = {}

    def rendered(
        values: Sequence[Path] = (), sets: Sequence[str] = (), set_files: Sequence[str] = ()
    ) -> list[Manifest]:
        key = (tuple(values), tuple(sets), tuple(set_files))
        if key not in cache:
            args = template_args(values, sets)
            for item in set_files:
                args += ["--set-file", item]
            result = run_helm(helm, *args)
            assert result.returncode == 0, result.stderr
            cache[key] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cache[key]

    return rendered


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: list[Manifest], kind: str, suffix: str) -> Manifest:
    found = [m for m in of_kind(manifests, kind) if m["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"one {kind} named *{suffix}, found {len(found)}"
    return found[0]
