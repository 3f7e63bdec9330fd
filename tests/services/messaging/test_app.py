"""The messaging API over HTTP, as mounted by ``mount_messaging``: contacts by account and
role a page at a time, playbooks with file/line/field errors, template previews, plans,
unsubscribe links, and the admin token."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from unittest.mock import ANY

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from services.messaging.app import (
    embedded_settings,
    mount_messaging,
    policies_of,
    publish_reference_playbooks,
    warn_of_missing_secrets,
)
from services.messaging.channels.webhooks import new_secret
from services.messaging.contacts import service as contacts
from services.messaging.contacts.directory import ContactFacts
from services.messaging.playbooks.service import REFERENCE_PLAYBOOKS
from services.messaging.policies.consent import unsubscribe_token
from services.messaging.settings import MessagingSettings
from shared.bus.memory import InMemoryBus
from shared.clock import FrozenClock
from shared.db import create_engine, create_session_factory
from shared.observability.http import create_http_app
from shared.runtime import Resources
from shared.settings import RuntimeSettings
from shared.tenancy.service import create_workspace
from tests.services.messaging.support import T0

TOKEN = "s3cret-admin-token-of-the-tests"
SECRET = "unsubscribe-key"
MERCHANT = (REFERENCE_PLAYBOOKS / "platform-merchant.yaml").read_text()


@dataclass
class Api:
    client: httpx.AsyncClient
    workspace: str
    workspace_id: str
    resources: Resources

    @property
    def base(self) -> str:
        return f"/api/messaging/workspaces/{self.workspace}"


async def open_api(database_url: str) -> AsyncIterator[Api]:
    """The API on a new workspace, its requests sent with the admin token set as TOKEN."""
    engine = create_engine(database_url)
    clock = FrozenClock(T0)
    resources = Resources(
        InMemoryBus(), engine, create_session_factory(engine), clock, CollectorRegistry()
    )
    app = create_http_app("test", "test", resources)
    settings = MessagingSettings(admin_token=SecretStr(TOKEN), unsubscribe_secret=SecretStr(SECRET))
    mount_messaging(app, settings, resources)  # its workers are tested on their own
    name = f"ws-{uuid.uuid4().hex[:12]}"
    async with resources.sessions() as session:
        issued = await create_workspace(session, name, clock=clock)
        await session.commit()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://messaging", headers=headers
    ) as client:
        yield Api(client, name, issued.workspace_id, resources)
    await engine.dispose()


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async for opened in open_api(database_url):
        yield opened


async def add_contacts(api: Api, *facts: ContactFacts) -> None:
    async with api.resources.sessions() as session:
        await contacts.learn(session, list(facts), now=T0)
        await session.commit()


async def test_contacts_page_by_account_and_role(api: Api) -> None:
    await add_contacts(
        api,
        *[
            ContactFacts(
                api.workspace_id,
                f"u{i}",
                account_id="acme",
                roles=frozenset({"admin" if i % 2 else "end_user"}),
            )
            for i in range(5)
        ],
        ContactFacts(api.workspace_id, "x1", account_id="other", roles=frozenset({"admin"})),
    )
    first = (
        await api.client.get(f"{api.base}/contacts", params={"account": "acme", "limit": 2})
    ).json()
    assert [c["contact_id"] for c in first["items"]] == ["u0", "u1"]
    second = (
        await api.client.get(
            f"{api.base}/contacts",
            params={"account": "acme", "limit": 2, "cursor": first["next_cursor"]},
        )
    ).json()
    assert [c["contact_id"] for c in second["items"]] == ["u2", "u3"]
    admins = (await api.client.get(f"{api.base}/contacts", params={"role": "admin"})).json()
    assert [c["contact_id"] for c in admins["items"]] == ["u1", "u3", "x1"]
    one = await api.client.get(f"{api.base}/contacts/u1")
    assert one.json()["roles"] == ["admin"]
    missing = await api.client.get(f"{api.base}/contacts/nobody")
    assert missing.status_code == 404
    assert missing.json()["detail"]["field"] == "contact_id"
    bad_role = await api.client.get(f"{api.base}/contacts", params={"role": "boss"})
    assert bad_role.status_code == 422
    bounced = await api.client.post(f"{api.base}/contacts/u1/bounces/email")
    assert bounced.json()["bounced"] == ["email"]
    assert (await api.client.post(f"{api.base}/contacts/u1/bounces/fax")).status_code == 422
    assert (await api.client.post(f"{api.base}/contacts/nobody/bounces/email")).status_code == 404


async def test_playbooks_publish_list_show_and_refuse_bad_files(api: Api) -> None:
    published = await api.client.post(
        f"{api.base}/playbooks", json={"source": MERCHANT, "source_name": "merchant.yaml"}
    )
    assert published.status_code == 201
    assert (published.json()["playbook_id"], published.json()["version"]) == (
        "platform-merchant-outreach",
        1,
    )
    again = await api.client.post(f"{api.base}/playbooks", json={"source": MERCHANT})
    assert again.status_code == 409
    broken = MERCHANT.replace(
        "channels: [email, dingtalk, feishu, in_app]", "channels: [carrier_pigeon]", 1
    )
    refused = await api.client.post(
        f"{api.base}/playbooks", json={"source": broken, "source_name": "b.yaml"}
    )
    assert refused.status_code == 422
    [problem] = refused.json()["detail"]["problems"]
    assert (problem["file"], problem["line"], problem["field"]) == (
        "b.yaml",
        20,
        "rules[0].steps[0].channels[0]",
    )
    valid = await api.client.post(f"{api.base}/playbooks/validate", json={"source": MERCHANT})
    assert valid.json()["counts"]["rules"] == 9
    listed = (await api.client.get(f"{api.base}/playbooks")).json()
    assert [p["playbook_id"] for p in listed["items"]] == ["platform-merchant-outreach"]
    detail = (await api.client.get(f"{api.base}/playbooks/platform-merchant-outreach")).json()
    assert [v["version"] for v in detail["versions"]] == [1]
    version = (
        await api.client.get(f"{api.base}/playbooks/platform-merchant-outreach/versions/1")
    ).json()
    assert version["current"] is True
    assert version["source"] == MERCHANT
    assert (await api.client.get(f"{api.base}/playbooks/nope")).status_code == 404


async def test_the_reference_playbooks_are_published_once(api: Api) -> None:
    assert await publish_reference_playbooks(api.resources, api.workspace) is True
    assert await publish_reference_playbooks(api.resources, api.workspace) is False
    listed = (await api.client.get(f"{api.base}/playbooks")).json()
    assert [p["playbook_id"] for p in listed["items"]] == [
        "platform-merchant-outreach",
        "saas-account-outreach",
    ]


async def test_a_template_preview_renders_sample_data_in_a_locale(api: Api) -> None:
    await publish_reference_playbooks(api.resources, api.workspace)
    preview = await api.client.post(
        f"{api.base}/templates/preview",
        json={
            "playbook_id": "platform-merchant-outreach",
            "template": "tier_benefits",
            "locale": "zh-CN",
        },
    )
    assert preview.status_code == 200
    body = preview.json()
    assert body["locale"] == "zh-CN"
    assert body["subject"] == "acme 已升级为 L3 级"
    inline = await api.client.post(
        f"{api.base}/templates/preview",
        json={
            "source": {"body": {"en": "Hi {{ contact.name }}"}},
            "sample": {"contact": {"name": "Ann"}},
        },
    )
    assert inline.json() == {"locale": "en", "subject": "", "body": "Hi Ann"}
    failing = await api.client.post(
        f"{api.base}/templates/preview", json={"source": {"body": {"en": "{{ nothing.here }}"}}}
    )
    assert failing.status_code == 422
    assert failing.json()["detail"]["field"] == "source"
    assert "UndefinedError" in failing.json()["detail"]["message"]
    neither = await api.client.post(f"{api.base}/templates/preview", json={"locale": "en"})
    assert neither.status_code == 422


async def test_an_unsubscribe_link_records_the_opt_out_once_verified(api: Api) -> None:
    await add_contacts(api, ContactFacts(api.workspace_id, "u1", account_id="acme"))
    token = unsubscribe_token(
        SECRET.encode(),
        workspace_id=api.workspace_id,
        contact_id="u1",
        category="tips",
        now=T0,
        valid_for=timedelta(days=1),
    )
    answer = await api.client.get("/api/messaging/unsubscribe", params={"token": token})
    assert answer.status_code == 200
    assert answer.json()["category"] == "tips"
    assert (await api.client.get(f"{api.base}/contacts/u1")).json()["consent"] == {"tips": False}
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    refused = await api.client.post("/api/messaging/unsubscribe", params={"token": forged})
    assert refused.status_code == 400
    assert refused.json()["detail"]["field"] == "token"
    api.resources.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    expired = await api.client.post("/api/messaging/unsubscribe", params={"token": token})
    assert expired.status_code == 400
    assert "expired" in expired.json()["detail"]["message"]


async def test_the_admin_token_guards_everything_but_the_unsubscribe_link(api: Api) -> None:
    async with httpx.AsyncClient(
        transport=api.client._transport, base_url="http://messaging"
    ) as anonymous:
        assert (await anonymous.get(f"{api.base}/contacts")).status_code == 401
        assert (await anonymous.get(f"{api.base}/playbooks")).status_code == 401
        assert (await anonymous.get(f"{api.base}/plans")).status_code == 401
        link = await anonymous.get("/api/messaging/unsubscribe", params={"token": "bad"})
        assert link.status_code == 400
    assert (await api.client.get(f"{api.base}/contacts")).status_code == 200
    assert (await api.client.get(f"{api.base}/plans")).json() == []


async def test_an_unknown_workspace_is_a_404_naming_the_field(api: Api) -> None:
    answer = await api.client.get("/api/messaging/workspaces/nowhere/contacts")
    assert answer.status_code == 404
    assert answer.json()["detail"]["field"] == "workspace"


def test_the_embedded_mode_keeps_its_unsubscribe_secret_and_links_to_itself(tmp_path: Path) -> None:
    runtime = RuntimeSettings(data_dir=tmp_path, host="127.0.0.1", port=8123)
    first = embedded_settings(MessagingSettings(), runtime)
    again = embedded_settings(MessagingSettings(), runtime)
    assert first.public_url == "http://127.0.0.1:8123"
    assert (first.allow_loopback_targets, first.allowed_target_networks) == (True, [])
    assert first.unsubscribe_secret is not None
    assert again.unsubscribe_secret is not None
    assert (
        first.unsubscribe_secret.get_secret_value() == again.unsubscribe_secret.get_secret_value()
    )
    assert (tmp_path / "unsubscribe-secret").stat().st_mode & 0o777 == 0o600
    assert first.webhook_secret is not None
    assert again.webhook_secret is not None
    assert first.webhook_secret.get_secret_value().startswith("whsec_")
    assert first.webhook_secret.get_secret_value() == again.webhook_secret.get_secret_value()
    assert (tmp_path / "webhook-secret").stat().st_mode & 0o777 == 0o600
    configured = embedded_settings(
        MessagingSettings(
            public_url="https://milepost.example",
            unsubscribe_secret=SecretStr("k"),
            webhook_secret=SecretStr("whsec_a2V5"),
        ),
        runtime,
    )
    assert configured.public_url == "https://milepost.example"
    assert configured.unsubscribe_secret == SecretStr("k")
    assert configured.webhook_secret == SecretStr("whsec_a2V5")


def test_an_unusable_budget_window_or_timezone_names_its_variable() -> None:
    with pytest.raises(ValueError, match="MILEPOST_MESSAGING_BUDGET_WINDOW: expected an ISO 8601"):
        policies_of(MessagingSettings(budget_window="a week"))
    assert policies_of(MessagingSettings(quiet_hours_end="21:00")).quiet is None
    with pytest.raises(ValueError, match="MILEPOST_MESSAGING_DEFAULT_TIMEZONE: 'Mars/Base'"):
        policies_of(MessagingSettings(default_timezone="Mars/Base"))


@pytest.mark.parametrize("version", [2**31, 2**70])
async def test_a_playbook_version_past_its_column_is_422(api: Api, version: int) -> None:
    await publish_reference_playbooks(api.resources, api.workspace)
    answer = await api.client.get(
        f"{api.base}/playbooks/platform-merchant-outreach/versions/{version}"
    )
    assert answer.status_code == 422, answer.text


def test_a_missing_or_published_webhook_secret_is_warned_of_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    published = SecretStr("whsec_bWlsZXBvc3QtZGV2ZWxvcG1lbnQtc2VjcmV0")
    with caplog.at_level(logging.WARNING):
        warn_of_missing_secrets(MessagingSettings())
        warn_of_missing_secrets(MessagingSettings(webhook_secret=published))
        warn_of_missing_secrets(MessagingSettings(webhook_secret=SecretStr(new_secret())))
    assert [record.getMessage().split(" ", 1) for record in caplog.records] == [
        ["MILEPOST_MESSAGING_WEBHOOK_SECRET", ANY],
        ["MILEPOST_MESSAGING_WEBHOOK_SECRET", ANY],
    ]
    assert "is not set" in caplog.records[0].getMessage()
    assert "published" in caplog.records[1].getMessage()
