"""Every default secret Milepost publishes is known, and a service holding one warns."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.published_secrets import PUBLISHED_SECRETS, warn_of_published_secrets

COMPOSE = Path(__file__).parents[2] / "deploy" / "compose.yaml"


def test_the_compose_file_has_no_secret_defaults() -> None:
    text = COMPOSE.read_text()
    assert re.findall(r"\$\{MILEPOST_\w*(?:SECRET|TOKEN)\w*:-([^}]+)\}", text) == []
    assert not any(secret in text for secret in PUBLISHED_SECRETS)


class Example(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MILEPOST_EXAMPLE_")

    admin_token: SecretStr | None = None
    signing_secret: SecretStr = SecretStr("whsec_bWlsZXBvc3QtZGV2ZWxvcG1lbnQtc2VjcmV0")
    name: str = "local-engine-token"


def test_each_variable_holding_a_published_secret_is_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        found = warn_of_published_secrets(Example(admin_token=SecretStr("local-engine-token")))
        assert warn_of_published_secrets(Example(signing_secret=SecretStr("mine"))) == []
    assert found == ["MILEPOST_EXAMPLE_ADMIN_TOKEN", "MILEPOST_EXAMPLE_SIGNING_SECRET"]
    assert [record.getMessage().split(" ", 1)[0] for record in caplog.records] == found
