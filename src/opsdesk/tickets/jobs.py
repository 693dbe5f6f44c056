"""Scheduled work of the ticket domain: closing tickets solved for longer than four days."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.jobs import scheduled
from opsdesk.tickets.service import close_solved_tickets


@scheduled("tickets.close_solved", every=timedelta(hours=1))
def close_solved(session: Session) -> None:
    close_solved_tickets(session, Actor.system("close solved tickets", via="job"))
