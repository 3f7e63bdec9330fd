"""Queries on contacts and account owners. Repositories flush, never commit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.contacts.directory import Contact
from services.messaging.contacts.models import AccountOwnerRow, ContactRow
from shared.db.statements import KEYS, among_keys, bulk_upsert

CHUNK = 200
ContactKey = tuple[str, str]
"""(workspace id, contact id)."""


def framed(roles: Collection[str]) -> str:
    return "," + ",".join(sorted(roles)) + "," if roles else ""


def contact_of(row: ContactRow) -> Contact:
    return Contact(
        workspace_id=row.workspace_id,
        contact_id=row.contact_id,
        account_id=row.account_id,
        name=row.name,
        email=row.email,
        phone=row.phone,
        chat_app_ids=dict(row.chat_app_ids),
        roles=frozenset(role for role in row.roles.split(",") if role),
        locale=row.locale,
        timezone=row.timezone,
        consent=dict(row.consent),
        bounced=frozenset(row.bounced),
        is_account_owner=row.is_account_owner,
    )


def _values(contact: Contact, now: datetime) -> dict[str, Any]:
    return {
        "workspace_id": contact.workspace_id,
        "contact_id": contact.contact_id,
        "account_id": contact.account_id,
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "chat_app_ids": dict(contact.chat_app_ids),
        "roles": framed(contact.roles),
        "locale": contact.locale,
        "timezone": contact.timezone,
        "consent": dict(contact.consent),
        "bounced": sorted(contact.bounced),
        "is_account_owner": contact.is_account_owner,
        "updated_at": now,
    }


_BY_KEY = select(ContactRow).where(among_keys(ContactRow.workspace_id, ContactRow.contact_id))
_PEOPLE_OF = (
    select(ContactRow)
    .where(among_keys(ContactRow.workspace_id, ContactRow.account_id))
    .order_by(ContactRow.contact_id)
)
_OWNERS_OF = (
    select(AccountOwnerRow.account_id, ContactRow)
    .join(
        AccountOwnerRow,
        (AccountOwnerRow.workspace_id == ContactRow.workspace_id)
        & (AccountOwnerRow.contact_id == ContactRow.contact_id),
    )
    .where(among_keys(AccountOwnerRow.workspace_id, AccountOwnerRow.account_id))
)


async def load(session: AsyncSession, keys: Collection[ContactKey]) -> dict[ContactKey, Contact]:
    found: dict[ContactKey, Contact] = {}
    wanted = list(dict.fromkeys(keys))
    for start in range(0, len(wanted), CHUNK):
        rows = await session.scalars(_BY_KEY, {KEYS: wanted[start : start + CHUNK]})
        for row in rows:
            found[(row.workspace_id, row.contact_id)] = contact_of(row)
    return found


async def save(session: AsyncSession, contacts: Sequence[Contact], *, now: datetime) -> None:
    """Insert or replace ``contacts`` (one each)."""
    await bulk_upsert(
        session,
        ContactRow,
        [_values(contact, now) for contact in contacts],
        key=("workspace_id", "contact_id"),
    )


async def save_owners(
    session: AsyncSession, owners: dict[tuple[str, str], str], *, now: datetime
) -> None:
    """Set the owner contact of each (workspace id, account id)."""
    await bulk_upsert(
        session,
        AccountOwnerRow,
        [
            {"workspace_id": w, "account_id": a, "contact_id": c, "updated_at": now}
            for (w, a), c in owners.items()
        ],
        key=("workspace_id", "account_id"),
    )


async def of_accounts(
    session: AsyncSession, accounts: Collection[tuple[str, str]]
) -> dict[tuple[str, str], list[Contact]]:
    """Each (workspace id, account id)'s people by contact id, then its owner (when one is
    known)."""
    wanted = list(dict.fromkeys(accounts))
    found: dict[tuple[str, str], list[Contact]] = {key: [] for key in wanted}
    for start in range(0, len(wanted), CHUNK):
        chunk = {KEYS: wanted[start : start + CHUNK]}
        for row in await session.scalars(_PEOPLE_OF, chunk):
            found[(row.workspace_id, row.account_id or "")].append(contact_of(row))
        owners = await session.execute(_OWNERS_OF, chunk)
        for account_id, row in owners:
            found[(row.workspace_id, account_id)].append(contact_of(row))
    return found


async def page(
    session: AsyncSession,
    workspace_id: str,
    *,
    account_id: str | None,
    role: str | None,
    after: str | None,
    limit: int,
) -> list[Contact]:
    """Up to ``limit`` contacts by id after ``after`` (keyset paging), filtered by account
    and role."""
    query = select(ContactRow).where(ContactRow.workspace_id == workspace_id)
    if account_id is not None:
        query = query.where(ContactRow.account_id == account_id)
    if role is not None:
        query = query.where(ContactRow.roles.like(f"%,{role},%"))
    if after is not None:
        query = query.where(ContactRow.contact_id > after)
    rows = await session.scalars(query.order_by(ContactRow.contact_id).limit(limit))
    return [contact_of(row) for row in rows]


async def row(session: AsyncSession, workspace_id: str, contact_id: str) -> ContactRow | None:
    return await session.get(ContactRow, (workspace_id, contact_id))


async def flush(session: AsyncSession) -> None:
    await session.flush()
