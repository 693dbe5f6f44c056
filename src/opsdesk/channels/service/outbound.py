"""Outbound email: staff public replies, receipts and refusals, queued in the outbox.

Invariants: the Message-ID of every email is chosen and stored (``outbound_emails``) in the
transaction that queues it, before it is sent, so a customer's reply threads back even if the
sender crashed right after sending; the outbox job (``email.send``) carries everything needed to
send, so a retry sends the same message with the same Message-ID; brands decide the From address,
name and signature; automatic mail is marked ``Auto-Submitted``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, insert, literal, select, union_all
from sqlalchemy.orm import Session

from opsdesk import clock, outbox
from opsdesk.channels.email_composing import OutgoingEmail, new_message_id
from opsdesk.channels.email_threading import reply_address, tagged_subject
from opsdesk.channels.enums import OutboundKind
from opsdesk.channels.models import OutboundEmail, TicketBrand
from opsdesk.channels.service.brand_snapshots import EmailBrandInfo, email_brands
from opsdesk.channels.service.brands import render_receipt
from opsdesk.config import Settings
from opsdesk.tickets.enums import AuthorKind, Channel
from opsdesk.tickets.events import MessageAdded
from opsdesk.tickets.html import text_to_html
from opsdesk.tickets.models import Message, Ticket

EMAIL_SEND_JOB = "email.send"
MAX_REFERENCES = 20
# Replies on these channels go back through the channel itself, not by email.
_CHANNELS_WITH_OWN_REPLIES = frozenset({Channel.SLACK.value})


class BrandLike(Protocol):
    """A brand as :func:`sender_for` reads it (an :class:`EmailBrand` or a :class:`EmailBrandInfo`)."""

    @property
    def from_name(self) -> str: ...

    @property
    def from_address(self) -> str: ...

    @property
    def support_address(self) -> str: ...

    @property
    def signature(self) -> str: ...


# Statements built once: their compiled form and cache key are reused for every email.
_TICKET_BRANDS = cast(Table, TicketBrand.__table__)
_MESSAGES = cast(Table, Message.__table__)
_OUTBOUND = cast(Table, OutboundEmail.__table__)
_BRAND_ID_OF_TICKET = select(_TICKET_BRANDS.c.brand_id).where(
    _TICKET_BRANDS.c.ticket_id == bindparam("ticket_id")
)
_TICKET_HAS_BRAND = select(_TICKET_BRANDS.c.ticket_id).where(
    _TICKET_BRANDS.c.ticket_id == bindparam("ticket_id")
)
_INSERT_TICKET_BRAND = insert(_TICKET_BRANDS)
# The conversation's Message-IDs: customers' emails (flag 1) and the ones opsdesk sent (flag 0).
_CONVERSATION_IDS = union_all(
    select(_MESSAGES.c.created_at, _MESSAGES.c.external_id, literal(1).label("from_customer")).where(
        _MESSAGES.c.ticket_id == bindparam("ticket_id"),
        _MESSAGES.c.channel == Channel.EMAIL.value,
        _MESSAGES.c.external_id.is_not(None),
        _MESSAGES.c.author_kind == AuthorKind.CUSTOMER.value,
    ),
    select(_OUTBOUND.c.created_at, _OUTBOUND.c.rfc_message_id, literal(0).label("from_customer")).where(
        _OUTBOUND.c.ticket_id == bindparam("ticket_id")
    ),
)
_INSERT_OUTBOUND = insert(_OUTBOUND).returning(_OUTBOUND.c.id)


def brand_for_recipients(session: Session, recipients: tuple[str, ...]) -> EmailBrandInfo | None:
    """The brand whose address (or a ``+tag`` variant of it) the mail was sent to."""
    if not recipients:
        return None
    plain = set()
    for address in recipients:
        local, _, domain = address.partition("@")
        plain.add(f"{local.split('+', 1)[0]}@{domain}")
    by_address = email_brands(session).by_support_address
    matches = [by_address[address] for address in plain if address in by_address]
    # Mail to two brands' addresses belongs to the older brand.
    return min(matches, key=lambda brand: brand.id) if matches else None


def set_ticket_brand(session: Session, ticket_id: int, brand_id: int) -> None:
    connection = session.connection()
    if connection.execute(_TICKET_HAS_BRAND, {"ticket_id": ticket_id}).first() is None:
        connection.execute(_INSERT_TICKET_BRAND, {"ticket_id": ticket_id, "brand_id": brand_id})


def brand_of(session: Session, ticket_id: int) -> EmailBrandInfo | None:
    brand_id = session.connection().execute(_BRAND_ID_OF_TICKET, {"ticket_id": ticket_id}).scalar()
    return email_brands(session).by_id.get(brand_id) if brand_id is not None else None


def sender_of(session: Session, ticket_id: int, settings: Settings) -> tuple[str, str, str, str]:
    """(from name, from address, reply address, signature) for mail about a ticket."""
    return sender_for(brand_of(session, ticket_id), settings)


def sender_for(brand: BrandLike | None, settings: Settings) -> tuple[str, str, str, str]:
    if brand is not None:
        return (
            brand.from_name,
            brand.from_address or brand.support_address,
            brand.support_address,
            brand.signature,
        )
    return settings.support_name, settings.support_address, settings.support_address, ""


def thread_ids(session: Session, ticket_id: int) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References) for a new email on the ticket: the customer's latest email if
    there is one, else our latest; References in the order the conversation happened."""
    session.flush()  # the messages of this transaction count (Core reads do not autoflush)
    entries = [
        (created_at, external_id, bool(from_customer))
        for created_at, external_id, from_customer in session.connection().execute(
            _CONVERSATION_IDS, {"ticket_id": ticket_id}
        )
        if external_id is not None
    ]
    entries.sort(key=lambda entry: (entry[0], not entry[2]))
    references = [entry[1] for entry in entries][-MAX_REFERENCES:]
    from_customer = [entry[1] for entry in entries if entry[2]]
    in_reply_to = from_customer[-1] if from_customer else (references[-1] if references else None)
    return in_reply_to, references


class TicketAddress(Protocol):
    """What sending mail about a ticket needs of it (a Ticket, or its two columns)."""

    @property
    def id(self) -> int: ...

    @property
    def reply_token(self) -> str: ...


@dataclass(frozen=True, slots=True)
class TicketColumns:
    id: int
    reply_token: str


def queue_email(
    session: Session,
    *,
    ticket: TicketAddress,
    kind: OutboundKind,
    to_address: str,
    subject: str,
    text: str,
    settings: Settings,
    message_id: int | None = None,
    html_body: str | None = None,
    sender: tuple[str, str, str, str] | None = None,
) -> int:
    """Store the email and its Message-ID, and queue its sending in the caller's transaction
    (``sender``: the :func:`sender_of` the caller already knows)."""
    from_name, from_address, support_address, signature = sender or sender_of(session, ticket.id, settings)
    if signature:
        text = f"{text.rstrip()}\n\n-- \n{signature}"
        html_body = (html_body or text_to_html(text.split("\n\n-- \n", 1)[0])) + (
            "<p>-- <br>" + html.escape(signature).replace("\n", "<br>") + "</p>"
        )
    in_reply_to, references = thread_ids(session, ticket.id)
    domain = from_address.partition("@")[2] or "opsdesk.invalid"
    rfc_id = new_message_id(domain, f"{ticket.id}")
    full_subject = tagged_subject(ticket.id, subject)
    outgoing = OutgoingEmail(
        message_id=rfc_id,
        from_name=from_name,
        from_address=from_address,
        to_address=to_address,
        subject=full_subject,
        text=text,
        html=html_body or text_to_html(text),
        reply_to=reply_address(support_address, ticket.reply_token),
        in_reply_to=in_reply_to,
        references=tuple(references),
        automatic=kind is not OutboundKind.REPLY,
    )
    outbound_id = _store_outbound(
        session,
        rfc_message_id=rfc_id,
        ticket_id=ticket.id,
        message_id=message_id,
        kind=kind.value,
        to_address=to_address[:320],
        from_address=from_address,
        subject=full_subject[:600],
    )
    outbox.enqueue_now(
        session,
        EMAIL_SEND_JOB,
        {"outbound_email_id": outbound_id, "email": _as_payload(outgoing)},
        idempotency_key=f"{EMAIL_SEND_JOB}:{rfc_id}",
    )
    return outbound_id


def _store_outbound(
    session: Session,
    *,
    rfc_message_id: str,
    ticket_id: int | None,
    message_id: int | None,
    kind: str,
    to_address: str,
    from_address: str,
    subject: str,
) -> int:
    """One ``INSERT … RETURNING id`` into ``outbound_emails`` (no ORM unit of work)."""
    session.flush()  # the ticket and message it points at are in the database first
    outbound_id = (
        session.connection()
        .execute(
            _INSERT_OUTBOUND,
            {
                "rfc_message_id": rfc_message_id,
                "ticket_id": ticket_id,
                "message_id": message_id,
                "kind": kind,
                "to_address": to_address,
                "from_address": from_address,
                "subject": subject,
                "status": "queued",
                "created_at": clock.now(),
            },
        )
        .scalar_one()
    )
    return int(outbound_id)


def queue_refusal(
    session: Session,
    *,
    to_address: str,
    recipients: tuple[str, ...],
    subject: str,
    refused_message_id: str | None,
    reason: str,
    settings: Settings,
) -> int:
    """Tell a sender their message was not accepted, and why (no ticket: nothing was opened).
    The caller makes sure the sender is a person, never an auto-responder or a mailer-daemon."""
    brand = brand_for_recipients(session, recipients)
    if brand is not None:
        from_name, from_address = brand.from_name, brand.from_address or brand.support_address
    else:
        from_name, from_address = settings.support_name, settings.support_address
    domain = from_address.partition("@")[2] or "opsdesk.invalid"
    rfc_id = new_message_id(domain, "refusal")
    text = (
        "Hello,\n\n"
        f'your message "{subject or "(no subject)"}" was not delivered to {from_address}: {reason}.\n\n'
        "Please send it again without the large attachments (share them with a link instead).\n"
    )
    outgoing = OutgoingEmail(
        message_id=rfc_id,
        from_name=from_name,
        from_address=from_address,
        to_address=to_address,
        subject=f"Not delivered: {subject}" if subject else "Not delivered: your message",
        text=text,
        html=text_to_html(text),
        in_reply_to=refused_message_id,
        references=(refused_message_id,) if refused_message_id else (),
        automatic=True,
    )
    outbound_id = _store_outbound(
        session,
        rfc_message_id=rfc_id,
        ticket_id=None,
        message_id=None,
        kind=OutboundKind.REFUSAL.value,
        to_address=to_address[:320],
        from_address=from_address,
        subject=outgoing.subject[:600],
    )
    outbox.enqueue_now(
        session,
        EMAIL_SEND_JOB,
        {"outbound_email_id": outbound_id, "email": _as_payload(outgoing)},
        idempotency_key=f"{EMAIL_SEND_JOB}:{rfc_id}",
    )
    return outbound_id


def _as_payload(outgoing: OutgoingEmail) -> dict[str, Any]:
    return {
        "message_id": outgoing.message_id,
        "from_name": outgoing.from_name,
        "from_address": outgoing.from_address,
        "to_address": outgoing.to_address,
        "subject": outgoing.subject,
        "text": outgoing.text,
        "html": outgoing.html,
        "reply_to": outgoing.reply_to,
        "in_reply_to": outgoing.in_reply_to,
        "references": list(outgoing.references),
        "automatic": outgoing.automatic,
    }


def outgoing_from_payload(payload: dict[str, Any]) -> OutgoingEmail:
    return OutgoingEmail(
        message_id=str(payload["message_id"]),
        from_name=str(payload["from_name"]),
        from_address=str(payload["from_address"]),
        to_address=str(payload["to_address"]),
        subject=str(payload["subject"]),
        text=str(payload["text"]),
        html=str(payload["html"]),
        reply_to=payload.get("reply_to"),
        in_reply_to=payload.get("in_reply_to"),
        references=tuple(payload.get("references") or ()),
        automatic=bool(payload.get("automatic")),
    )


@dataclass(frozen=True, slots=True)
class NewTicketFacts:
    """What the receipt of a ticket just opened says, from the objects that opened it."""

    ticket_id: int
    subject: str
    reply_token: str
    requester_name: str | None


def queue_receipt_for_new_email_ticket(
    session: Session, facts: NewTicketFacts, to_address: str, settings: Settings, brand: EmailBrandInfo | None
) -> int:
    """The receipt of a ticket just opened by an email (no ticket or person load): it goes to
    whoever wrote, who is the new ticket's requester; ``brand`` is the brand the mail was sent to
    (already looked up)."""
    name = facts.requester_name
    text = render_receipt(
        brand.receipt_template if brand is not None else "",
        name=(name.split(" ", 1)[0] if name else "") or "there",
        ticket_id=facts.ticket_id,
        subject=facts.subject,
    )
    return queue_email(
        session,
        ticket=TicketColumns(facts.ticket_id, facts.reply_token),
        kind=OutboundKind.RECEIPT,
        to_address=to_address,
        subject=f"Re: {facts.subject}",
        text=text,
        settings=settings,
        sender=sender_for(brand, settings),
    )


def queue_receipt(session: Session, ticket: Ticket, settings: Settings) -> int | None:
    """Acknowledge a new ticket to its requester (never for automated mail: the caller checks)."""
    address = ticket.requester.primary_email
    if address is None:
        return None
    brand = brand_of(session, ticket.id)
    text = render_receipt(
        brand.receipt_template if brand is not None else "",
        name=ticket.requester.first_name or "there",
        ticket_id=ticket.id,
        subject=ticket.subject,
    )
    return queue_email(
        session,
        ticket=ticket,
        kind=OutboundKind.RECEIPT,
        to_address=address,
        subject=f"Re: {ticket.subject}",
        text=text,
        settings=settings,
    )


def queue_public_reply(session: Session, event: MessageAdded, settings: Settings) -> int | None:
    """Email a staff member's public reply to the requester, threaded with the conversation."""
    if event.author_kind != AuthorKind.STAFF.value or not event.is_public:
        return None
    ticket = session.get_one(Ticket, event.ticket_id)
    if ticket.channel in _CHANNELS_WITH_OWN_REPLIES:
        return None
    if ticket.channel == Channel.CHAT.value:
        from opsdesk.channels.service.chat import replies_by_email

        if not replies_by_email(session, ticket.id):
            return None  # the visitor is in the chat and reads the reply there
    message = session.get_one(Message, event.message_id)
    address = ticket.requester.primary_email
    if address is None:
        return None
    return queue_email(
        session,
        ticket=ticket,
        kind=OutboundKind.REPLY,
        to_address=address,
        subject=f"Re: {ticket.subject}",
        text=message.body_text,
        html_body=message.body_html,
        settings=settings,
        message_id=message.id,
    )


def send_public_reply(session: Session, event: MessageAdded) -> None:
    """Reaction to MessageAdded: queue the email of a staff public reply."""
    if event.author_kind != AuthorKind.STAFF.value or not event.is_public:
        return  # most messages: decided before paying for Settings() (it reads the environment)
    queue_public_reply(session, event, Settings())
