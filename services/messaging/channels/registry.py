"""Every channel, built from the settings; the dispatcher looks channels up by name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messaging.channels.base import Channel
from services.messaging.channels.chat import DingTalkFormat, FeishuFormat, SlackFormat, WeComFormat
from services.messaging.channels.guard import UrlGuard
from services.messaging.channels.http import HttpChannel, HttpFormat, http_client
from services.messaging.channels.in_app import InAppChannel
from services.messaging.channels.smtp import EmailChannel
from services.messaging.channels.webhooks import WebhookFormat
from services.messaging.settings import MessagingSettings
from shared.clock import Clock


def url_guard(settings: MessagingSettings) -> UrlGuard:
    return UrlGuard(
        tuple(settings.outbound_allowlist),
        allow_loopback=settings.allow_loopback_targets,
        allowed_networks=tuple(settings.allowed_target_networks),
    )


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


@asynccontextmanager
async def open_channels(
    settings: MessagingSettings, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> AsyncIterator[Mapping[str, Channel]]:
    """The channels by name, sharing one HTTP client closed on the way out."""
    guard = url_guard(settings)
    async with http_client(settings.http_timeout_seconds, guard) as client:

        def over_http(spelling: HttpFormat) -> HttpChannel:
            return HttpChannel(
                spelling,
                client=client,
                guard=guard,
                clock=clock,
                max_response_bytes=settings.http_max_response_bytes,
            )

        yield {
            "email": EmailChannel(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.smtp_from,
                username=settings.smtp_username,
                password=_secret(settings.smtp_password),
                starttls=settings.smtp_starttls,
                timeout_seconds=settings.smtp_timeout_seconds,
            ),
            "webhook": over_http(WebhookFormat(settings.webhook_url)),
            "feishu": over_http(
                FeishuFormat(settings.feishu_webhook_url, _secret(settings.feishu_secret))
            ),
            "dingtalk": over_http(
                DingTalkFormat(settings.dingtalk_webhook_url, _secret(settings.dingtalk_secret))
            ),
            "wecom": over_http(WeComFormat(settings.wecom_webhook_url)),
            "slack": over_http(SlackFormat(settings.slack_webhook_url)),
            "in_app": InAppChannel(sessions, clock),
        }
