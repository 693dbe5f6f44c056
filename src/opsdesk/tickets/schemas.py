"""Request and response shapes of the ticket API (tickets, messages, events, people, accounts,
views, custom fields, statuses). The fixed shapes of the API contract live here; fields may be
added, never renamed."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opsdesk.auth.models import AuditEvent, User
from opsdesk.tickets.enums import AccountTier, Channel, FieldType, Priority, StatusCategory, TicketType
from opsdesk.tickets.models import (
    Account,
    CustomFieldDefinition,
    Message,
    Person,
    Ticket,
    TicketStatusDefinition,
    View,
)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- references


class PersonRef(BaseModel):
    id: int
    name: str
    email: str | None


class AccountRef(BaseModel):
    id: int
    name: str
    tier: str


class UserRef(BaseModel):
    id: int
    name: str


class GroupRef(BaseModel):
    id: int
    name: str


# ---------------------------------------------------------------- tickets


class RequesterIn(StrictModel):
    email: str = Field(max_length=320)
    name: str | None = Field(default=None, max_length=200)


class TicketCreate(StrictModel):
    subject: str = Field(max_length=500)
    body: str = Field(max_length=1_000_000)
    body_html: str | None = None
    requester: RequesterIn
    priority: Priority = Priority.NORMAL
    type: TicketType = TicketType.QUESTION
    channel: Channel = Channel.API
    tags: list[str] = Field(default_factory=list, max_length=50)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    group_id: int | None = None
    assignee_id: int | None = None
    category: str | None = Field(default=None, max_length=120)
    language: str | None = Field(default=None, max_length=16)


NULLABLE_TICKET_FIELDS = frozenset({"assignee_id", "group_id", "account_id", "category", "language"})


class TicketPatch(StrictModel):
    subject: str | None = Field(default=None, max_length=500)
    status: str | None = Field(default=None, description="a category or the name of an admin's status")
    priority: Priority | None = None
    type: TicketType | None = None
    category: str | None = Field(default=None, max_length=120)
    assignee_id: int | None = None
    group_id: int | None = None
    account_id: int | None = None
    language: str | None = Field(default=None, max_length=16)
    tags: list[str] | None = Field(default=None, max_length=50)
    add_tags: list[str] | None = Field(default=None, max_length=50)
    remove_tags: list[str] | None = Field(default=None, max_length=50)
    custom_fields: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _no_null_for_required_fields(self) -> TicketPatch:
        for name in self.model_fields_set - NULLABLE_TICKET_FIELDS:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, mode="json")


class TicketOut(BaseModel):
    id: int
    subject: str
    status: StatusCategory
    status_name: str
    custom_status_id: int | None
    priority: str
    type: str
    category: str | None
    channel: str
    language: str | None
    requester: PersonRef
    account: AccountRef | None
    assignee: UserRef | None
    group: GroupRef | None
    tags: list[str]
    custom_fields: dict[str, Any]
    merged_into_id: int | None
    follow_up_of_id: int | None
    created_at: datetime
    updated_at: datetime
    first_reply_at: datetime | None
    solved_at: datetime | None
    closed_at: datetime | None
    reopened_count: int
    staff_public_reply_count: int
    customer_message_count: int
    satisfaction_score: int | None
    sla: list[dict[str, Any]] = Field(
        default_factory=list,
        description="SLA targets of the ticket (metric, status, due_at, business_hours, policy, "
        "time_left_seconds), as in GET /api/v1/tickets/{id}/sla",
    )

    @classmethod
    def of(cls, ticket: Ticket) -> TicketOut:
        requester = ticket.requester
        account = ticket.account
        return cls(
            id=ticket.id,
            subject=ticket.subject,
            status=StatusCategory(ticket.status),
            status_name=ticket.status_name,
            custom_status_id=ticket.custom_status_id,
            priority=ticket.priority,
            type=ticket.type,
            category=ticket.category,
            channel=ticket.channel,
            language=ticket.language,
            requester=PersonRef(id=requester.id, name=requester.name, email=requester.primary_email),
            account=AccountRef(id=account.id, name=account.name, tier=account.tier) if account else None,
            assignee=UserRef(id=ticket.assignee.id, name=ticket.assignee.name) if ticket.assignee else None,
            group=GroupRef(id=ticket.group.id, name=ticket.group.name) if ticket.group else None,
            tags=ticket.tags,
            custom_fields=dict(ticket.custom_fields or {}),
            merged_into_id=ticket.merged_into_id,
            follow_up_of_id=ticket.follow_up_of_id,
            created_at=ticket.created_at,
            updated_at=ticket.updated_at,
            first_reply_at=ticket.first_reply_at,
            solved_at=ticket.solved_at,
            closed_at=ticket.closed_at,
            reopened_count=ticket.reopened_count,
            staff_public_reply_count=ticket.staff_public_reply_count,
            customer_message_count=ticket.customer_message_count,
            satisfaction_score=ticket.satisfaction_score,
        )


class TicketList(BaseModel):
    items: list[TicketOut]
    next_cursor: str | None


class BulkUpdate(StrictModel):
    ids: list[int] = Field(max_length=100, description="up to 100 ticket ids")
    changes: TicketPatch
    atomic: bool = Field(
        default=False,
        description="false (default): each ticket is changed or refused on its own, like Zendesk's "
        "update_many job; true: all or nothing, any refusal answers 409 and changes nothing",
    )


class BulkFieldOut(BaseModel):
    field: str
    message: str


class BulkRefusalOut(BaseModel):
    id: int
    code: str
    status: int
    detail: str
    errors: list[BulkFieldOut]


class BulkResultOut(BaseModel):
    updated_ids: list[int]
    unchanged_ids: list[int]
    refused: list[BulkRefusalOut] = Field(
        default_factory=list, description="tickets not changed, each with the reason"
    )


class MergeIn(StrictModel):
    into_id: int


# ---------------------------------------------------------------- messages and events


class MessageCreate(StrictModel):
    body: str = Field(max_length=1_000_000)
    public: bool = True
    body_html: str | None = None
    status: str | None = Field(default=None, description="optionally set the ticket's status too")


class AuthorOut(BaseModel):
    kind: str
    id: int | None
    name: str


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size_bytes: int


class MessageOut(BaseModel):
    id: int
    ticket_id: int
    author: AuthorOut
    public: bool
    body: str
    body_html: str | None
    channel: str
    created_at: datetime
    attachments: list[AttachmentOut]

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        author_id = message.author_user_id if message.author_kind == "staff" else message.author_person_id
        return cls(
            id=message.id,
            ticket_id=message.ticket_id,
            author=AuthorOut(kind=message.author_kind, id=author_id, name=message.author_name),
            public=message.is_public,
            body=message.body_text,
            body_html=message.body_html,
            channel=message.channel,
            created_at=message.created_at,
            attachments=[
                AttachmentOut(
                    id=item.id,
                    filename=item.filename,
                    content_type=item.content_type,
                    size_bytes=item.size_bytes,
                )
                for item in message.attachments
            ],
        )


class EventActor(BaseModel):
    kind: str
    id: int | None
    name: str


class EventOut(BaseModel):
    id: int
    entity_type: str
    entity_id: int | None
    action: str
    field: str | None
    old: Any
    new: Any
    actor: EventActor
    via: str
    reason: str | None
    created_at: datetime

    @classmethod
    def of(cls, event: AuditEvent) -> EventOut:
        return cls(
            id=event.id,
            entity_type=event.entity_type,
            entity_id=event.entity_id,
            action=event.action,
            field=event.field,
            old=event.old_value,
            new=event.new_value,
            actor=EventActor(kind=event.actor_kind, id=event.actor_id, name=event.actor_name),
            via=event.via,
            reason=event.reason,
            created_at=event.created_at,
        )


# ---------------------------------------------------------------- people


class PersonCreate(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    emails: list[str] = Field(min_length=1, max_length=20)
    phone: str | None = None
    language: str | None = None
    time_zone: str | None = None
    primary_account_id: int | None = None
    account_ids: list[int] = Field(default_factory=list)
    external_ids: dict[str, str] = Field(default_factory=dict)


class PersonPatch(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    emails: list[str] | None = Field(default=None, max_length=20)
    phone: str | None = None
    language: str | None = None
    time_zone: str | None = None
    primary_account_id: int | None = None
    account_ids: list[int] | None = None
    external_ids: dict[str, str] | None = None


class PersonOut(BaseModel):
    id: int
    name: str
    email: str | None
    emails: list[str]
    phone: str | None
    language: str | None
    time_zone: str | None
    primary_account_id: int | None
    account_ids: list[int]
    external_ids: dict[str, str]
    created_at: datetime

    @classmethod
    def of(cls, person: Person) -> PersonOut:
        return cls(
            id=person.id,
            name=person.name,
            email=person.primary_email,
            emails=[entry.email for entry in person.emails],
            phone=person.phone,
            language=person.language,
            time_zone=person.time_zone,
            primary_account_id=person.primary_account_id,
            account_ids=sorted(entry.account_id for entry in person.other_accounts),
            external_ids={entry.system: entry.external_id for entry in person.external_ids},
            created_at=person.created_at,
        )


class PersonList(BaseModel):
    items: list[PersonOut]
    next_cursor: str | None


# ---------------------------------------------------------------- accounts


class AccountCreate(StrictModel):
    name: str = Field(max_length=200)
    tier: AccountTier = AccountTier.SELF_SERVE
    plan_name: str | None = Field(default=None, max_length=120)
    mrr_amount_minor: int = Field(default=0, ge=0)
    currency: str = Field(default="USD", min_length=3, max_length=3)
    renewal_on: date | None = None
    owner_id: int | None = None
    is_hot: bool = False
    notes: str = ""
    domains: list[str] = Field(default_factory=list, max_length=50)


class AccountPatch(StrictModel):
    name: str | None = Field(default=None, max_length=200)
    tier: AccountTier | None = None
    plan_name: str | None = Field(default=None, max_length=120)
    mrr_amount_minor: int | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    renewal_on: date | None = None
    owner_id: int | None = None
    is_hot: bool | None = None
    notes: str | None = None
    domains: list[str] | None = Field(default=None, max_length=50)


class AccountOut(BaseModel):
    """Plan and MRR are payment details: null for roles without payment.read (contractors)."""

    id: int
    name: str
    tier: str
    plan_name: str | None
    mrr_amount_minor: int | None
    currency: str | None
    renewal_on: date | None
    owner: UserRef | None
    is_hot: bool
    notes: str
    domains: list[str]
    created_at: datetime

    @classmethod
    def of(cls, account: Account, *, with_payment: bool) -> AccountOut:
        owner: User | None = account.owner
        return cls(
            id=account.id,
            name=account.name,
            tier=account.tier,
            plan_name=account.plan_name if with_payment else None,
            mrr_amount_minor=account.mrr_amount_minor if with_payment else None,
            currency=account.currency if with_payment else None,
            renewal_on=account.renewal_on,
            owner=UserRef(id=owner.id, name=owner.name) if owner else None,
            is_hot=account.is_hot,
            notes=account.notes,
            domains=sorted(entry.domain for entry in account.domains),
            created_at=account.created_at,
        )


class AccountList(BaseModel):
    items: list[AccountOut]
    next_cursor: str | None


# ---------------------------------------------------------------- views


class ViewCreate(StrictModel):
    name: str = Field(max_length=120)
    filters: dict[str, Any] = Field(default_factory=dict)
    sort: str = "-updated_at"
    shared: bool = False
    position: int = 100


class ViewPatch(StrictModel):
    name: str | None = Field(default=None, max_length=120)
    filters: dict[str, Any] | None = None
    sort: str | None = None
    position: int | None = None
    shared: bool | None = Field(
        default=None, description="share with everyone, or make it yours only (leads and admins)"
    )


class ViewOrder(StrictModel):
    shared: bool = Field(description="order the shared views (leads and admins) or your own")
    ids: list[int] = Field(max_length=500, description="every view of that scope, in the new order")


class ViewPreviewOut(BaseModel):
    count: int
    filters: dict[str, Any]


class ViewOut(BaseModel):
    id: int
    name: str
    filters: dict[str, Any]
    sort: str
    shared: bool
    owner_id: int | None
    position: int
    is_default: bool
    count: int | None = None

    @classmethod
    def of(cls, view: View, count: int | None = None) -> ViewOut:
        return cls(
            id=view.id,
            name=view.name,
            filters=dict(view.filters or {}),
            sort=view.sort,
            shared=view.owner_id is None,
            owner_id=view.owner_id,
            position=view.position,
            is_default=view.is_default,
            count=count,
        )


# ---------------------------------------------------------------- custom fields and statuses


class CustomFieldCreate(StrictModel):
    key: str = Field(max_length=64)
    label: str = Field(max_length=120)
    field_type: FieldType
    options: list[str] = Field(default_factory=list)
    is_required: bool = False
    position: int = 0


class CustomFieldPatch(StrictModel):
    label: str | None = Field(default=None, max_length=120)
    options: list[str] | None = None
    is_required: bool | None = None
    is_active: bool | None = None
    position: int | None = None


class CustomFieldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    label: str
    field_type: str
    options: list[str]
    is_required: bool
    is_active: bool
    position: int

    @classmethod
    def of(cls, definition: CustomFieldDefinition) -> CustomFieldOut:
        return cls.model_validate(definition)


class StatusCreate(StrictModel):
    name: str = Field(max_length=80)
    category: StatusCategory
    description: str = ""
    position: int = 0


class StatusPatch(StrictModel):
    name: str | None = Field(default=None, max_length=80)
    description: str | None = None
    is_active: bool | None = None
    position: int | None = None


class StatusOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    category: str
    description: str
    is_active: bool
    position: int

    @classmethod
    def of(cls, status: TicketStatusDefinition) -> StatusOut:
        return cls.model_validate(status)
