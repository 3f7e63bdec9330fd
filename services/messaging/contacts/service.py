"""The contact directory: learning contacts from events, paging them, and recording opt-outs
and bounces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.messaging.contacts import repository
from services.messaging.contacts.directory import (
    Contact,
    ContactFacts,
    OwnerFacts,
    merge,
    owner_contact,
)
from services.messaging.errors import ContactNotFound

MAX_PAGE = 200


async def learn(
    session: AsyncSession, facts: Sequence[ContactFacts | OwnerFacts], *, now: datetime
) -> dict[tuple[str, str], str]:
    """Fold ``facts`` (in order) into the directory; returns the owners it set, by
    (workspace id, account id)."""
    if not facts:
        return {}
    known = await repository.load(session, {(f.workspace_id, f.contact_id) for f in facts})
    changed: dict[tuple[str, str], Contact] = {}
    owners: dict[tuple[str, str], str] = {}
    for fact in facts:
        key = (fact.workspace_id, fact.contact_id)
        before = changed.get(key) or known.get(key)
        if isinstance(fact, OwnerFacts):
            after = owner_contact(before, fact)
            owners[(fact.workspace_id, fact.account_id)] = fact.contact_id
        else:
            after = merge(before, fact)
        if after != before:
            changed[key] = after
    await repository.save(session, list(changed.values()), now=now)
    await repository.save_owners(session, owners, now=now)
    return owners


async def list_contacts(
    session: AsyncSession,
    workspace_id: str,
    *,
    account_id: str | None = None,
    role: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Contact], str | None]:
    """A page of contacts by id, and the cursor of the next page (or None)."""
    limit = max(1, min(limit, MAX_PAGE))
    found = await repository.page(
        session, workspace_id, account_id=account_id, role=role, after=cursor, limit=limit + 1
    )
    items = found[:limit]
    return items, (items[-1].contact_id if len(found) > limit else None)


async def get_contact(session: AsyncSession, workspace_id: str, contact_id: str) -> Contact:
    row = await repository.row(session, workspace_id, contact_id)
    if row is None:
        raise ContactNotFound(f"no contact {contact_id!r} in this workspace")
    return repository.contact_of(row)


async def set_consent(
    session: AsyncSession,
    workspace_id: str,
    contact_id: str,
    category: str,
    *,
    allowed: bool,
    now: datetime,
) -> Contact:
    """Record the contact's answer for ``category`` (an unsubscribe records ``False``)."""
    contact = await get_contact(session, workspace_id, contact_id)
    updated = replace(contact, consent={**contact.consent, category: allowed})
    await repository.save(session, [updated], now=now)
    return updated


async def mark_bounced(
    session: AsyncSession, workspace_id: str, contact_id: str, channel: str, *, now: datetime
) -> Contact:
    """Record that the contact's address on ``channel`` bounced: playbooks then use the
    step's next channel for them, until the address changes. Raises
    :class:`ContactNotFound`."""
    updated = await record_bounce(session, workspace_id, contact_id, channel, now=now)
    if updated is None:
        raise ContactNotFound(f"no contact {contact_id!r} in this workspace")
    return updated


async def record_bounce(
    session: AsyncSession, workspace_id: str, contact_id: str, channel: str, *, now: datetime
) -> Contact | None:
    """:func:`mark_bounced` for the dispatcher: ``None`` (nothing written) when the contact
    is no longer in the directory, since a delivery may outlive its contact."""
    row = await repository.row(session, workspace_id, contact_id)
    if row is None:
        return None
    contact = repository.contact_of(row)
    updated = replace(contact, bounced=contact.bounced | {channel})
    await repository.save(session, [updated], now=now)
    return updated
