"""The contact directory's tables: people per account, and each account's owner."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, String
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.model_base import Base
from shared.db.types import UtcDateTime


class ContactRow(Base):
    """One person of a workspace: the account they belong to (none for an account owner),
    their roles, addresses, locale, timezone and consent per category."""

    __tablename__ = "messaging_contacts"
    __table_args__ = (
        Index(
            "ix_messaging_contacts_account",
            "workspace_id",
            "account_id",
            # Partial, so a batch's lookup by key cannot use it (see the engine's funnel
            # index); a query for given accounts implies the predicate.
            postgresql_where=sql_text("account_id IS NOT NULL"),
            sqlite_where=sql_text("account_id IS NOT NULL"),
        ),
    )

    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    account_id: Mapped[str | None] = mapped_column(String(256))
    name: Mapped[str | None] = mapped_column(String(512))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    chat_app_ids: Mapped[dict[str, str]] = mapped_column(JSON)
    roles: Mapped[str] = mapped_column(
        String(200), doc="Comma-framed role names (',admin,end_user,'), so a role filters by LIKE."
    )
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    consent: Mapped[dict[str, bool]] = mapped_column(JSON, doc="Category -> opted in or out.")
    bounced: Mapped[list[str]] = mapped_column(JSON, doc="Channels whose address bounced.")
    is_account_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class AccountOwnerRow(Base):
    """Who owns an account (its account manager or CSM), a contact of the workspace."""

    __tablename__ = "messaging_account_owners"

    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    contact_id: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
