"""Telling the customer: a public reply on the ticket the work came from, or an email through
the outbox when there is no ticket. Both are written in the caller's transaction, so a refused
or rolled-back operation tells nobody anything."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import outbox
from opsdesk.auth.actor import Actor
from opsdesk.billing.models import BillingCustomer
from opsdesk.billing.notice_texts import render_notice
from opsdesk.tickets import service as tickets
from opsdesk.tickets.enums import UNSOLVED_STATUSES
from opsdesk.tickets.models import Message, Ticket

EMAIL_JOB = "billing.customer_email"


def first_name(customer: BillingCustomer) -> str:
    if customer.person is not None and customer.person.first_name:
        return customer.person.first_name
    return "there"


def reply_on_ticket(session: Session, actor: Actor, ticket: Ticket, key: str, **fields: object) -> Message:
    """A public reply with the notice ``key``; staff actors reply as themselves."""
    return tickets.add_message(session, actor, ticket, body_text=render_notice(key, **fields), public=True)


def note_on_ticket(session: Session, ticket: Ticket, text: str) -> Message:
    """An internal note by opsdesk (a system author), e.g. a payment failure reason."""
    return tickets.add_message(session, Actor.system("billing"), ticket, body_text=text, public=False)


def email_customer(
    session: Session,
    customer: BillingCustomer,
    key: str,
    *,
    idempotency_key: str,
    subject: str,
    **fields: object,
) -> None:
    outbox.enqueue(
        session,
        EMAIL_JOB,
        {
            "to": customer.email,
            "subject": subject,
            "body_text": render_notice(key, **fields),
            "customer_id": customer.id,
            "notice": key,
        },
        idempotency_key=idempotency_key,
    )


def open_ticket_of(session: Session, customer: BillingCustomer) -> Ticket | None:
    """The customer's account's most recent unsolved ticket, where billing news belongs."""
    return session.scalars(
        select(Ticket)
        .where(Ticket.account_id == customer.account_id, Ticket.status.in_(UNSOLVED_STATUSES))
        .order_by(Ticket.updated_at.desc(), Ticket.id.desc())
        .limit(1)
    ).first()
