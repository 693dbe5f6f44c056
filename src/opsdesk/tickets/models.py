"""Tables of the ticket domain: accounts, people, tickets, messages, attachments, statuses,
custom field definitions and saved views.

The ticket row carries the instants the metric layer needs (first reply, last solve, reopen
count, reply counts) so metrics are computed from columns, not by replaying the audit trail.
``status`` is always one of the six categories; ``custom_status_id`` names the admin's status
inside that category when there is one.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opsdesk import clock
from opsdesk.auth.models import Group, User
from opsdesk.db import Base, BigId


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    tier: Mapped[str] = mapped_column(String(20), default="self_serve", index=True)
    plan_name: Mapped[str | None] = mapped_column(String(120))
    mrr_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    renewal_on: Mapped[date | None] = mapped_column(Date)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    is_hot: Mapped[bool] = mapped_column(Boolean, default=False)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    owner: Mapped[User | None] = relationship(lazy="joined")
    domains: Mapped[list[AccountDomain]] = relationship(
        back_populates="account", cascade="all, delete-orphan", lazy="selectin"
    )


class AccountDomain(Base):
    """An email domain of an account: new people writing from it join the account."""

    __tablename__ = "account_domains"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)

    account: Mapped[Account] = relationship(back_populates="domains")


class Person(Base):
    """A contact at a customer: the requester of tickets."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    primary_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    primary_account: Mapped[Account | None] = relationship(lazy="joined")
    emails: Mapped[list[PersonEmail]] = relationship(
        back_populates="person", cascade="all, delete-orphan", lazy="selectin", order_by="PersonEmail.id"
    )
    external_ids: Mapped[list[PersonExternalId]] = relationship(
        back_populates="person", cascade="all, delete-orphan", lazy="selectin"
    )
    other_accounts: Mapped[list[PersonAccount]] = relationship(
        back_populates="person", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def primary_email(self) -> str | None:
        for entry in self.emails:
            if entry.is_primary:
                return entry.email
        return self.emails[0].email if self.emails else None

    @property
    def first_name(self) -> str:
        return self.name.split(" ", 1)[0] if self.name else ""


class PersonEmail(Base):
    __tablename__ = "person_emails"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    person: Mapped[Person] = relationship(back_populates="emails")


class PersonExternalId(Base):
    """An id of the person in another system, e.g. ``("stripe", "cus_123")``."""

    __tablename__ = "person_external_ids"
    __table_args__ = (UniqueConstraint("system", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))

    person: Mapped[Person] = relationship(back_populates="external_ids")


class PersonAccount(Base):
    """A further account a person works for (consultants, agencies)."""

    __tablename__ = "person_accounts"
    __table_args__ = (UniqueConstraint("person_id", "account_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    relation: Mapped[str] = mapped_column(String(40), default="member")

    person: Mapped[Person] = relationship(back_populates="other_accounts")
    account: Mapped[Account] = relationship(lazy="joined")


class TicketStatusDefinition(Base):
    """A named status inside one of the six categories (e.g. "Waiting on engineering" in on_hold)."""

    __tablename__ = "ticket_statuses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    category: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_group_id", "status", "group_id", "id"),
        Index("ix_tickets_status_assignee_id", "status", "assignee_id", "id"),
        Index("ix_tickets_status_updated_at", "status", "updated_at"),
        # "Recently solved" and other solved-within views: a range per status, counted on the index.
        Index("ix_tickets_status_solved_at", "status", "solved_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default="new")
    custom_status_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket_statuses.id", ondelete="SET NULL")
    )
    priority: Mapped[str] = mapped_column(String(10), default="normal", index=True)
    type: Mapped[str] = mapped_column(String(10), default="question")
    category: Mapped[str | None] = mapped_column(String(120), index=True)
    channel: Mapped[str] = mapped_column(String(20), default="api", index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    requester_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"), index=True)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    follow_up_of_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    reply_token: Mapped[str] = mapped_column(String(32), unique=True)

    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    first_reply_at: Mapped[datetime | None] = mapped_column()
    first_solved_at: Mapped[datetime | None] = mapped_column()
    solved_at: Mapped[datetime | None] = mapped_column(index=True)
    closed_at: Mapped[datetime | None] = mapped_column()
    last_customer_message_at: Mapped[datetime | None] = mapped_column()
    last_staff_reply_at: Mapped[datetime | None] = mapped_column()
    status_changed_at: Mapped[datetime] = mapped_column(default=clock.now)
    reopened_count: Mapped[int] = mapped_column(Integer, default=0)
    staff_public_reply_count: Mapped[int] = mapped_column(Integer, default=0)
    customer_message_count: Mapped[int] = mapped_column(Integer, default=0)
    handle_seconds: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction_score: Mapped[int | None] = mapped_column(Integer)
    satisfaction_comment: Mapped[str | None] = mapped_column(Text)
    satisfaction_at: Mapped[datetime | None] = mapped_column()

    requester: Mapped[Person] = relationship(lazy="joined", innerjoin=True)
    account: Mapped[Account | None] = relationship(lazy="joined")
    assignee: Mapped[User | None] = relationship(lazy="joined")
    group: Mapped[Group | None] = relationship(lazy="joined")
    custom_status: Mapped[TicketStatusDefinition | None] = relationship(lazy="joined")
    tag_rows: Mapped[list[TicketTag]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", lazy="selectin", order_by="TicketTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @property
    def status_name(self) -> str:
        if self.custom_status is not None:
            return self.custom_status.name
        return self.status.replace("_", " ").capitalize()


class TicketTag(Base):
    __tablename__ = "ticket_tags"
    __table_args__ = (
        UniqueConstraint("ticket_id", "tag"),
        Index("ix_ticket_tags_tag_ticket", "tag", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(80))

    ticket: Mapped[Ticket] = relationship(back_populates="tag_rows")


class Message(Base):
    """A public reply or an internal note on a ticket, by staff, the customer or the system."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_ticket_id_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author_kind: Mapped[str] = mapped_column(String(10))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author_person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(20), default="api")
    external_id: Mapped[str | None] = mapped_column(String(500), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    author_user: Mapped[User | None] = relationship(lazy="joined")
    author_person: Mapped[Person | None] = relationship(lazy="joined")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def author_name(self) -> str:
        if self.author_user is not None:
            return self.author_user.name
        if self.author_person is not None:
            return self.author_person.name
        return "opsdesk"


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_path: Mapped[str] = mapped_column(String(500))
    is_inline: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    message: Mapped[Message | None] = relationship(back_populates="attachments")


class CustomFieldDefinition(Base):
    __tablename__ = "custom_field_definitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(120))
    field_type: Mapped[str] = mapped_column(String(20))
    options: Mapped[list[str]] = mapped_column(default=list)
    is_required: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class View(Base):
    """A saved, named filter over tickets. ``owner_id`` null means shared with everyone."""

    __tablename__ = "views"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sort: Mapped[str] = mapped_column(String(40), default="-updated_at")
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
