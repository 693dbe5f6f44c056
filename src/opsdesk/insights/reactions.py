"""Insights' reactions to domain events (subscribed in :mod:`opsdesk.reactions`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from opsdesk.insights.service.experiments import assign_new_ticket
from opsdesk.tickets.events import TicketCreated


def assign_experiments(session: Session, event: TicketCreated) -> None:
    """A new ticket draws its arm in every running experiment, before routing looks at it."""
    assign_new_ticket(session, event.ticket_id)
