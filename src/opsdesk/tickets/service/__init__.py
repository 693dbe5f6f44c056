"""Operations of the ticket domain, one concept per module.

Every function takes ``(session, actor, …)``, checks permission, validates, changes state, writes
the audit trail and raises events; it flushes and never commits.
"""

from opsdesk.tickets.service.access import access_ticket, visible_tickets
from opsdesk.tickets.service.lifecycle import (
    IncomingMessage,
    NewTicket,
    add_message,
    close_solved_tickets,
    create_ticket,
    merge_tickets,
    receive,
    update_ticket,
)
from opsdesk.tickets.service.people import find_or_create_person, person_by_email

__all__ = [
    "IncomingMessage",
    "NewTicket",
    "access_ticket",
    "add_message",
    "close_solved_tickets",
    "create_ticket",
    "find_or_create_person",
    "merge_tickets",
    "person_by_email",
    "receive",
    "update_ticket",
    "visible_tickets",
]
