"""The contacts API's bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.messaging.contacts.directory import Contact


class ContactOut(BaseModel):
    contact_id: str
    account_id: str | None = Field(description="None for an account owner (a workspace contact).")
    name: str | None
    email: str | None
    phone: str | None
    chat_app_ids: dict[str, str]
    roles: list[str]
    locale: str | None
    timezone: str | None
    consent: dict[str, bool] = Field(description="Category -> opted in (true) or out (false).")
    bounced: list[str] = Field(description="Channels whose address bounced.")
    is_account_owner: bool

    @classmethod
    def of(cls, contact: Contact) -> ContactOut:
        return cls(
            contact_id=contact.contact_id,
            account_id=contact.account_id,
            name=contact.name,
            email=contact.email,
            phone=contact.phone,
            chat_app_ids=dict(contact.chat_app_ids),
            roles=sorted(contact.roles),
            locale=contact.locale,
            timezone=contact.timezone,
            consent=dict(contact.consent),
            bounced=sorted(contact.bounced),
            is_account_owner=contact.is_account_owner,
        )


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class UnsubscribedOut(BaseModel):
    contact_id: str
    category: str
    message: str
