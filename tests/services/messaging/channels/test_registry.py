"""Every channel is built from the settings."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.messaging.channels.http import HttpChannel
from services.messaging.channels.in_app import InAppChannel
from services.messaging.channels.registry import open_channels, url_guard
from services.messaging.channels.smtp import EmailChannel
from services.messaging.settings import CHANNELS, MessagingSettings
from shared.clock import SystemClock
from shared.db import create_engine, create_session_factory


async def test_every_planned_channel_has_an_adapter(tmp_path: Path) -> None:
    settings = MessagingSettings(smtp_host="mail.example.com", smtp_port=2525)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    async with open_channels(settings, create_session_factory(engine), SystemClock()) as channels:
        assert set(channels) == set(CHANNELS)
        assert isinstance(channels["email"], EmailChannel)
        assert (channels["email"].host, channels["email"].port) == ("mail.example.com", 2525)
        assert isinstance(channels["in_app"], InAppChannel)
        assert all(
            isinstance(channels[name], HttpChannel)
            for name in ("webhook", "feishu", "dingtalk", "wecom", "slack")
        )
    await engine.dispose()


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILEPOST_MESSAGING_RETRY_SCHEDULE_SECONDS", "[5, 50]")
    monkeypatch.setenv("MILEPOST_MESSAGING_RATE_LIMITS_PER_SECOND", '{"slack": 0.5}')
    monkeypatch.setenv("MILEPOST_MESSAGING_OUTBOUND_ALLOWLIST", '["*.example.com"]')
    monkeypatch.setenv("MILEPOST_MESSAGING_ALLOWED_TARGET_NETWORKS", '["10.20.0.0/16"]')
    settings = MessagingSettings()
    assert settings.retry_schedule_seconds == [5.0, 50.0]
    assert settings.rate_limits_per_second == {"slack": 0.5}
    guard = url_guard(settings)
    assert (guard.allowlist, guard.allow_loopback) == (("*.example.com",), False)
    assert guard.allowed_networks == (ipaddress.ip_network("10.20.0.0/16"),)


def test_a_rate_limit_for_an_unknown_channel_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILEPOST_MESSAGING_RATE_LIMITS_PER_SECOND", '{"pager": 1}')
    with pytest.raises(ValidationError, match="unknown channels \\['pager'\\]"):
        MessagingSettings()
