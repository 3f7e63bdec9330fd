"""What an event says about the people of an account, and how it changes what is known. Pure.

Contacts are learned from four kinds of events on ``milepost.events``:

* ``identify`` calls: the user's traits (``name``, ``email``, ``phone``, ``roles`` or
  ``role``, ``locale``, ``timezone``, ``chat_app_ids``, ``consent``), and the account when
  the call carries ``context.groupId``;
* ``group`` calls: the user belongs to the account; roles may come in ``context.traits``;
* CRM ``milepost.crm.contact.upserted`` facts: every field of the contact;
* CRM ``milepost.crm.account.upserted`` facts with ``owner_email``: the account's owner
  (account manager / CSM), a contact of the workspace with the ``account_owner`` role.

A value an event does not state keeps what was known; a value that is not usable (an
unknown role, a timezone that is no IANA name, an address without ``@``) is ignored, so one
sloppy trait never loses the rest of the call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.contracts.crm import ChatAppIds, ContactRole
from shared.contracts.events import AnyEvent, EventType
from shared.contracts.triggers import Audience

ROLES = frozenset(role.value for role in ContactRole)
CHAT_APPS = tuple(ChatAppIds.model_fields)
OWNER_PREFIX = "owner:"
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_PHONE = re.compile(r"^\+?[0-9 ()-]{3,32}$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Contact:
    """A person as the directory knows them."""

    workspace_id: str
    contact_id: str
    account_id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    chat_app_ids: Mapping[str, str] = field(default_factory=dict)
    roles: frozenset[str] = frozenset()
    locale: str | None = None
    timezone: str | None = None
    consent: Mapping[str, bool] = field(default_factory=dict)
    """Category -> opted in (True) or out (False); a category not listed has no answer."""
    bounced: frozenset[str] = frozenset()
    """Channels whose address bounced; playbooks fall back to the next channel."""
    is_account_owner: bool = False


@dataclass(frozen=True, slots=True)
class ContactFacts:
    """What one event states about one person; ``None`` (or empty) means not stated."""

    workspace_id: str
    contact_id: str
    account_id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    chat_app_ids: Mapping[str, str] = field(default_factory=dict)
    roles: frozenset[str] = frozenset()
    locale: str | None = None
    timezone: str | None = None
    consent: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OwnerFacts:
    """A CRM account's owner: the account, and the owner's address and name."""

    workspace_id: str
    account_id: str
    email: str
    name: str | None = None

    @property
    def contact_id(self) -> str:
        return owner_contact_id(self.email)


def owner_contact_id(email: str) -> str:
    """The contact id of an account owner: one per address across the accounts they own."""
    return f"{OWNER_PREFIX}{email.strip().lower()}"


def facts_from(event: AnyEvent) -> ContactFacts | OwnerFacts | None:
    """The contact (or owner) facts ``event`` states; ``None`` when it states none."""
    if event.type is EventType.CRM:
        if event.event == "milepost.crm.contact.upserted":
            return _person(event, event.properties, str(event.properties.get("contact_id", "")))
        if event.event == "milepost.crm.account.upserted" and event.account_id:
            email = _email(event.properties.get("owner_email"))
            if email is None:
                return None
            return OwnerFacts(
                event.workspace_id,
                event.account_id,
                email,
                _text(event.properties.get("owner_name")),
            )
        return None
    if event.user_id is None:
        return None
    if event.type is EventType.IDENTIFY:
        return _person(event, event.traits, event.user_id)
    if event.type is EventType.GROUP and event.account_id:
        traits = event.context.get("traits")
        return ContactFacts(
            event.workspace_id,
            event.user_id,
            account_id=event.account_id,
            roles=_roles(traits if isinstance(traits, Mapping) else EMPTY),
        )
    return None


def merge(known: Contact | None, facts: ContactFacts) -> Contact:
    """The contact after ``facts``: stated values replace known ones, the rest stays."""
    base = known or Contact(facts.workspace_id, facts.contact_id)
    return replace(
        base,
        account_id=facts.account_id or base.account_id,
        name=facts.name or base.name,
        email=facts.email or base.email,
        phone=facts.phone or base.phone,
        chat_app_ids={**base.chat_app_ids, **facts.chat_app_ids},
        roles=facts.roles or base.roles,
        locale=facts.locale or base.locale,
        timezone=facts.timezone or base.timezone,
        consent={**base.consent, **facts.consent},
        bounced=base.bounced - ({"email"} if facts.email and facts.email != base.email else set()),
    )


def owner_contact(known: Contact | None, facts: OwnerFacts) -> Contact:
    """The owner as a contact of the workspace (no account of their own)."""
    base = known or Contact(facts.workspace_id, facts.contact_id)
    return replace(
        base,
        name=facts.name or base.name,
        email=facts.email,
        roles=base.roles | {Audience.ACCOUNT_OWNER.value},
        is_account_owner=True,
    )


def _person(event: AnyEvent, values: Mapping[str, Any], contact_id: str) -> ContactFacts | None:
    if not contact_id:
        return None
    chat = values.get("chat_app_ids")
    consent = values.get("consent")
    return ContactFacts(
        event.workspace_id,
        contact_id,
        account_id=event.account_id,
        name=_text(values.get("name")),
        email=_email(values.get("email")),
        phone=_matching(values.get("phone"), _PHONE),
        chat_app_ids=_chat_ids(chat) if isinstance(chat, Mapping) else {},
        roles=_roles(values),
        locale=_matching(values.get("locale"), _LOCALE),
        timezone=_timezone(values.get("timezone")),
        consent=_consent(consent) if isinstance(consent, Mapping) else {},
    )


def _roles(source: Mapping[str, Any]) -> frozenset[str]:
    raw = source.get("roles", source.get("role"))
    values = raw if isinstance(raw, list) else [raw]
    return frozenset(v for v in values if isinstance(v, str) and v in ROLES)


def _text(value: Any, limit: int = 512) -> str | None:
    return value.strip()[:limit] or None if isinstance(value, str) else None


def _email(value: Any) -> str | None:
    text = _text(value, 320)
    return text if text is not None and "@" in text.strip("@") else None


def _matching(value: Any, pattern: re.Pattern[str]) -> str | None:
    return value if isinstance(value, str) and pattern.fullmatch(value) else None


def _timezone(value: Any) -> str | None:
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return value


def _chat_ids(values: Mapping[str, Any]) -> dict[str, str]:
    return {
        app: value[:512]
        for app, value in values.items()
        if app in CHAT_APPS and isinstance(value, str) and value
    }


def _consent(values: Mapping[str, Any]) -> dict[str, bool]:
    return {
        category: allowed
        for category, allowed in values.items()
        if isinstance(category, str) and _CATEGORY.fullmatch(category) and isinstance(allowed, bool)
    }
