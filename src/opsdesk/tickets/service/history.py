"""Reading a ticket's conversation and its audit trail."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.models import AuditEvent
from opsdesk.auth.permissions import Permission, require
from opsdesk.tickets.models import Message, Ticket


def list_messages(session: Session, actor: Actor, ticket: Ticket) -> list[Message]:
    """Every message of a ticket (public replies and internal notes), oldest first."""
    require(actor, Permission.TICKET_READ)
    return list(
        session.scalars(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)).unique()
    )


def list_events(session: Session, actor: Actor, ticket: Ticket) -> list[AuditEvent]:
    """The ticket's audit trail, oldest first: every change, by whom, through what."""
    require(actor, Permission.AUDIT_READ)
    return list(
        session.scalars(select(AuditEvent).where(AuditEvent.ticket_id == ticket.id).order_by(AuditEvent.id))
    )
