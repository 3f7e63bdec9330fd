"""Secrets published with Milepost: the Compose file's former local defaults and the webhook
secret that was once built in. Anyone can sign or authenticate with them, so a service warns
at start when its settings hold one."""

from __future__ import annotations

import logging

from pydantic import SecretStr
from pydantic_settings import BaseSettings

logger = logging.getLogger(__name__)

PUBLISHED_SECRETS = frozenset(
    {
        "whsec_bWlsZXBvc3QtZGV2ZWxvcG1lbnQtc2VjcmV0",
        "whsec_bG9jYWwtY29tcG9zZS1zaWduaW5nLXNlY3JldA==",
        "local-engine-token",
        "local-scoring-token",
        "local-messaging-token",
    }
)


def warn_of_published_secrets(settings: BaseSettings) -> list[str]:
    """Log a warning naming each variable of ``settings`` that holds a published secret;
    returns those variables."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    found = [
        f"{prefix}{name}".upper()
        for name, value in settings
        if isinstance(value, SecretStr) and value.get_secret_value() in PUBLISHED_SECRETS
    ]
    for variable in found:
        logger.warning(
            "%s holds a default published with Milepost: anyone can use it; set your own",
            variable,
        )
    return found
