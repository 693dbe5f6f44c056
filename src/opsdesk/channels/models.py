"""Tables of the channels domain.

- ``raw_inbound``: every input from outside as it arrived (raw MIME bytes or a JSON payload),
  written and committed before any processing; ``dedupe_key`` (a Message-ID, a Slack event id)
  is unique, so a repeat is stored once and processed once.
- ``outbound_emails``: the Message-IDs opsdesk sent, so replies to them thread to their ticket.
- ``imap_mailboxes``: mailboxes polled over IMAP and the last UID taken from each.
- ``email_brands`` / ``ticket_brands``: per-brand addresses, names and signatures.
- ``webhook_subscriptions`` / ``webhook_deliveries`` / ``webhook_attempts``: outbound webhooks
  and their delivery log.
- ``slack_connections`` / ``slack_threads``: connected Slack channels and the thread of each ticket.
- ``chat_brands`` / ``chat_conversations`` / ``chat_presence``: the chat widget's sites and their
  allowed origins, live conversations (each a ticket of channel ``chat``), agents' chat status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from opsdesk import clock
from opsdesk.db import Base, BigId


class RawInbound(Base):
    __tablename__ = "raw_inbound"
    __table_args__ = (
        Index("ix_raw_inbound_status_id", "status", "id"),
        Index("ix_raw_inbound_sender_received_at", "sender", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(120))  # "smtp", "imap:<mailbox>", "http", …
    dedupe_key: Mapped[str] = mapped_column(String(600), unique=True)
    sender: Mapped[str] = mapped_column(String(320), default="")
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload: Mapped[dict[str, Any] | None] = mapped_column()
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    noise_kind: Mapped[str] = mapped_column(String(20), default="none")
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None] = mapped_column()
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))


class OutboundEmail(Base):
    __tablename__ = "outbound_emails"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rfc_message_id: Mapped[str] = mapped_column(String(500), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    to_address: Mapped[str] = mapped_column(String(320))
    from_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(600))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    sent_at: Mapped[datetime | None] = mapped_column()


class ImapMailbox(Base):
    __tablename__ = "imap_mailboxes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    host: Mapped[str] = mapped_column(String(253))
    port: Mapped[int] = mapped_column(Integer, default=993)
    security: Mapped[str] = mapped_column(String(10), default="tls")  # none | starttls | tls
    username: Mapped[str] = mapped_column(String(320))
    password: Mapped[str] = mapped_column(Text)  # sealed: opsdesk.channels.secret_box
    folder: Mapped[str] = mapped_column(String(200), default="INBOX")
    # IMAP UIDs and UIDVALIDITY are unsigned 32-bit: too big for a signed INTEGER.
    uid_validity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    poll_interval_seconds: Mapped[int] = mapped_column(Integer, default=60)
    # The lease of the worker polling the mailbox now: one poller at a time, across processes.
    poll_lease_owner: Mapped[str | None] = mapped_column(String(120))
    poll_lease_until: Mapped[datetime | None] = mapped_column()
    poll_attempted_at: Mapped[datetime | None] = mapped_column()
    last_polled_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class EmailBrand(Base):
    """A brand the team supports under its own address: mail to it opens tickets of the brand,
    and replies on them go out from it with the brand's name and signature."""

    __tablename__ = "email_brands"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    support_address: Mapped[str] = mapped_column(String(320), unique=True)
    # Mail goes out from this address ("" = the support address); replies still come back to the
    # support address through Reply-To.
    from_address: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(200))
    signature: Mapped[str] = mapped_column(Text, default="")
    # The receipt's text ("" = the default); placeholders {name}, {ticket_id}, {subject}.
    receipt_template: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class TicketBrand(Base):
    """The brand a ticket was opened under (tickets without a row use the default address)."""

    __tablename__ = "ticket_brands"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("email_brands.id", ondelete="CASCADE"), index=True)


class WebhookSubscription(Base):
    """An outside URL that receives ticket events, signed with the subscription's secret."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    events: Mapped[list[str]] = mapped_column(default=list)  # event types, or ["*"]
    description: Mapped[str] = mapped_column(String(200), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class WebhookDelivery(Base):
    """One event for one subscription; ``status`` is pending, succeeded or failed (gave up)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_subscription_id_id", "subscription_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_type: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_response_ms: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    delivered_at: Mapped[datetime | None] = mapped_column()


class WebhookAttempt(Base):
    """The log of every try: when, the answer's status code, how long it took, what failed."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(default=clock.now)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_ms: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)


class SlackConnection(Base):
    """A Slack (Connect) channel shared with a customer: its messages open tickets."""

    __tablename__ = "slack_connections"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(40))
    channel_id: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    bot_token: Mapped[str] = mapped_column(Text)  # sealed: opsdesk.channels.secret_box
    # The Slack app's signing secret for this workspace (sealed; none = OPSDESK_SLACK_SIGNING_SECRET).
    signing_secret: Mapped[str | None] = mapped_column(Text)
    # The customer account the channel belongs to: its requesters join the account.
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class SlackThread(Base):
    """The Slack thread a ticket lives in (``thread_ts`` is the ts of the thread's first message)."""

    __tablename__ = "slack_threads"
    __table_args__ = (UniqueConstraint("channel_id", "thread_ts"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(40))
    thread_ts: Mapped[str] = mapped_column(String(40))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)


class ChatBrand(Base):
    """A site that embeds the chat widget: its public key (``data-brand``), the origins allowed to
    talk to opsdesk, its texts, and how long a visitor waits for an agent before the conversation
    becomes an ordinary ticket answered by email."""

    __tablename__ = "chat_brands"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    allowed_origins: Mapped[list[str]] = mapped_column(default=list)
    email_brand_id: Mapped[int | None] = mapped_column(ForeignKey("email_brands.id", ondelete="SET NULL"))
    greeting: Mapped[str] = mapped_column(String(500), default="Hi! How can we help?")
    accept_timeout_seconds: Mapped[int] = mapped_column(Integer, default=120)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class ChatConversation(Base):
    """One visitor's live conversation. ``visitor_token_digest`` is the SHA-256 of the token the
    widget keeps in localStorage (the token itself is never stored); the conversation is a ticket
    (channel ``chat``) from the first message on. ``status``: waiting → active → ended, or
    waiting → offline (nobody online or nobody accepted: answered by email)."""

    __tablename__ = "chat_conversations"
    __table_args__ = (
        Index("ix_chat_conversations_status_id", "status", "id"),
        Index("ix_chat_conversations_client_started_at", "client_address", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("chat_brands.id", ondelete="CASCADE"), index=True)
    visitor_token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    visitor_name: Mapped[str] = mapped_column(String(200))
    visitor_email: Mapped[str] = mapped_column(String(320))
    origin: Mapped[str] = mapped_column(String(300), default="")
    client_address: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True, unique=True
    )
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(default=clock.now)
    waiting_since: Mapped[datetime | None] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    visitor_seen_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_message_at: Mapped[datetime | None] = mapped_column()


class ChatPresence(Base):
    """An agent's chat status (online | away | offline) and their last heartbeat: an agent counts
    as online only while the status is online and a heartbeat arrived recently (a closed tab stops
    the heartbeats, so it goes offline by itself)."""

    __tablename__ = "chat_presence"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="offline")
    last_heartbeat_at: Mapped[datetime] = mapped_column(default=clock.now)
    changed_at: Mapped[datetime] = mapped_column(default=clock.now)
