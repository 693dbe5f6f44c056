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
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock, outbox
from opsdesk.channels.email_composing import OutgoingEmail, new_message_id
from opsdesk.channels.email_threading import reply_address, tagged_subject
from opsdesk.channels.enums import OutboundKind
from opsdesk.channels.models import EmailBrand, OutboundEmail, TicketBrand
from opsdesk.channels.service.brands import render_receipt
from opsdesk.config import Settings
from opsdesk.tickets.enums import AuthorKind, Channel
from opsdesk.tickets.events import MessageAdded
from opsdesk.tickets.html import text_to_html
from opsdesk.tickets.models import Message, Person, Ticket

EMAIL_SEND_JOB = "email.send"
MAX_REFERENCES = 20
# Replies on these channels go back through the channel itself, not by email.
_CHANNELS_WITH_OWN_REPLIES = frozenset({Channel.SLACK.value})


def brand_for_recipients(session: Session, recipients: tuple[str, ...]) -> EmailBrand | None:
    """The brand whose address (or a ``+tag`` variant of it) the mail was sent to."""
    if not recipients:
        return None
    plain = set()
    for address in recipients:
        local, _, domain = address.partition("@")
        plain.add(f"{local.split('+', 1)[0]}@{domain}")
    return session.scalars(select(EmailBrand).where(EmailBrand.support_address.in_(sorted(plain)))).first()


def set_ticket_brand(session: Session, ticket_id: int, brand_id: int) -> None:
    if session.get(TicketBrand, ticket_id) is None:
        session.add(TicketBrand(ticket_id=ticket_id, brand_id=brand_id))
        session.flush()


def brand_of(session: Session, ticket_id: int) -> EmailBrand | None:
    return session.scalars(
        select(EmailBrand)
        .join(TicketBrand, TicketBrand.brand_id == EmailBrand.id)
        .where(TicketBrand.ticket_id == ticket_id)
    ).first()


def sender_of(session: Session, ticket_id: int, settings: Settings) -> tuple[str, str, str, str]:
    """(from name, from address, reply address, signature) for mail about a ticket."""
    return sender_for(brand_of(session, ticket_id), settings)


def sender_for(brand: EmailBrand | None, settings: Settings) -> tuple[str, str, str, str]:
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
    entries: list[tuple[Any, str, bool]] = []
    for created_at, external_id in session.execute(
        select(Message.created_at, Message.external_id).where(
            Message.ticket_id == ticket_id,
            Message.channel == Channel.EMAIL.value,
            Message.external_id.is_not(None),
            Message.author_kind == AuthorKind.CUSTOMER.value,
        )
    ):
        if external_id is not None:
            entries.append((created_at, external_id, True))
    for created_at, rfc_id in session.execute(
        select(OutboundEmail.created_at, OutboundEmail.rfc_message_id).where(
            OutboundEmail.ticket_id == ticket_id
        )
    ):
        entries.append((created_at, rfc_id, False))
    entries.sort(key=lambda entry: entry[0])
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
) -> OutboundEmail:
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
    row = OutboundEmail(
        rfc_message_id=rfc_id,
        ticket_id=ticket.id,
        message_id=message_id,
        kind=kind.value,
        to_address=to_address[:320],
        from_address=from_address,
        subject=full_subject[:600],
        status="queued",
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    outbox.enqueue(
        session,
        EMAIL_SEND_JOB,
        {"outbound_email_id": row.id, "email": _as_payload(outgoing)},
        idempotency_key=f"{EMAIL_SEND_JOB}:{rfc_id}",
    )
    return row


def queue_refusal(
    session: Session,
    *,
    to_address: str,
    recipients: tuple[str, ...],
    subject: str,
    refused_message_id: str | None,
    reason: str,
    settings: Settings,
) -> OutboundEmail:
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
    row = OutboundEmail(
        rfc_message_id=rfc_id,
        ticket_id=None,
        kind=OutboundKind.REFUSAL.value,
        to_address=to_address[:320],
        from_address=from_address,
        subject=outgoing.subject[:600],
        status="queued",
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    outbox.enqueue(
        session,
        EMAIL_SEND_JOB,
        {"outbound_email_id": row.id, "email": _as_payload(outgoing)},
        idempotency_key=f"{EMAIL_SEND_JOB}:{rfc_id}",
    )
    return row


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


def queue_receipt_for_new_email_ticket(
    session: Session, ticket_id: int, to_address: str, settings: Settings, brand_id: int | None
) -> OutboundEmail:
    """The receipt of a ticket just opened by an email, from columns (no ticket or person load):
    it goes to whoever wrote, who is the new ticket's requester."""
    subject, reply_token, name = session.execute(
        select(Ticket.subject, Ticket.reply_token, Person.name)
        .join(Person, Person.id == Ticket.requester_id)
        .where(Ticket.id == ticket_id)
    ).one()
    brand = session.get(EmailBrand, brand_id) if brand_id is not None else None  # already loaded
    text = render_receipt(
        brand.receipt_template if brand is not None else "",
        name=(name.split(" ", 1)[0] if name else "") or "there",
        ticket_id=ticket_id,
        subject=subject,
    )
    return queue_email(
        session,
        ticket=TicketColumns(ticket_id, reply_token),
        kind=OutboundKind.RECEIPT,
        to_address=to_address,
        subject=f"Re: {subject}",
        text=text,
        settings=settings,
        sender=sender_for(brand, settings),
    )


def queue_receipt(session: Session, ticket: Ticket, settings: Settings) -> OutboundEmail | None:
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


def queue_public_reply(session: Session, event: MessageAdded, settings: Settings) -> OutboundEmail | None:
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
