"""Typed CRM facts carried as CloudEvents 1.0 and published as ``crm`` events.

The CloudEvent ``type`` selects the data model; ``data.account_id`` names the account.
Every model forbids unknown top-level fields except ``attributes`` (free-form extras), so a
typo in a CRM integration is a 4xx naming the field, not silently lost data.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=256)]
ShortText = Annotated[str, StringConstraints(max_length=512)]


class ContactRole(StrEnum):
    """The roles a person holds inside an account (see docs/domain.md, section 1)."""

    DECISION_MAKER = "decision_maker"
    ADMIN = "admin"
    END_USER = "end_user"
    INFLUENCER = "influencer"
    GATEKEEPER = "gatekeeper"


class BusinessType(StrEnum):
    """Platform business (merchants on a marketplace) or product/service business (SaaS)."""

    PLATFORM = "platform"
    SERVICE = "service"


class CrmData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: Identifier
    attributes: dict[str, object] = Field(
        default_factory=dict, description="Free-form extra fields from the CRM."
    )


class AccountUpserted(CrmData):
    name: ShortText | None = None
    business_type: BusinessType | None = None
    industry: ShortText | None = None
    region: ShortText | None = None
    size: Annotated[int, Field(ge=0)] | None = Field(default=None, description="Employees.")
    owner_email: EmailStr | None = Field(
        default=None, description="The account manager / CSM who owns the account."
    )
    owner_name: ShortText | None = None


class ChatAppIds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    feishu: ShortText | None = None
    dingtalk: ShortText | None = None
    wecom: ShortText | None = None
    slack: ShortText | None = None


class ContactUpserted(CrmData):
    contact_id: Identifier = Field(description="The person's id, the same as Segment's userId.")
    name: ShortText | None = None
    roles: list[ContactRole] = Field(default_factory=list, max_length=5)
    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{3,32}$")] | None = None
    chat_app_ids: ChatAppIds = Field(default_factory=ChatAppIds)
    locale: (
        Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None
    ) = None
    timezone: ShortText | None = Field(default=None, description="IANA name, e.g. Asia/Shanghai.")


class DealStageChanged(CrmData):
    deal_id: Identifier
    stage: ShortText
    previous_stage: ShortText | None = None
    amount: Decimal | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None


class ContractSigned(CrmData):
    contract_id: Identifier
    value: Decimal = Field(ge=0)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    starts_on: date
    ends_on: date
    seats: Annotated[int, Field(ge=0)] | None = None
    acquisition_cost: Decimal | None = Field(default=None, ge=0)


class SubscriptionRenewed(CrmData):
    subscription_id: Identifier
    renewed_until: date
    value: Decimal | None = Field(default=None, ge=0)
    seats: Annotated[int, Field(ge=0)] | None = None


class SubscriptionCancelled(CrmData):
    subscription_id: Identifier
    effective_on: date
    reason: ShortText | None = None


class InvoicePaid(CrmData):
    invoice_id: Identifier
    amount: Decimal = Field(ge=0)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    paid_at: AwareDatetime | None = None


class InvoiceOverdue(CrmData):
    invoice_id: Identifier
    amount: Decimal = Field(ge=0)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    due_on: date
    days_overdue: Annotated[int, Field(ge=0)] = 0


class TicketOpened(CrmData):
    ticket_id: Identifier
    subject: ShortText | None = None
    priority: ShortText | None = None
    contact_id: Identifier | None = None


class TicketClosed(CrmData):
    ticket_id: Identifier
    resolution: ShortText | None = None


CRM_EVENT_TYPES: dict[str, type[CrmData]] = {
    "milepost.crm.account.upserted": AccountUpserted,
    "milepost.crm.contact.upserted": ContactUpserted,
    "milepost.crm.deal.stage_changed": DealStageChanged,
    "milepost.crm.contract.signed": ContractSigned,
    "milepost.crm.subscription.renewed": SubscriptionRenewed,
    "milepost.crm.subscription.cancelled": SubscriptionCancelled,
    "milepost.crm.invoice.paid": InvoicePaid,
    "milepost.crm.invoice.overdue": InvoiceOverdue,
    "milepost.crm.ticket.opened": TicketOpened,
    "milepost.crm.ticket.closed": TicketClosed,
}
"""CloudEvent ``type`` -> the model its ``data`` must satisfy."""
