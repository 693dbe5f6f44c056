"""Shared pieces of the ticket pages: a ticket as a table row, the views sidebar, and turning
domain errors into HTTP errors a page can show."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from opsdesk.auth.actor import Actor
from opsdesk.auth.errors import PermissionDeniedError
from opsdesk.errors import NotFoundError
from opsdesk.tickets.models import Ticket
from opsdesk.tickets.pages import display
from opsdesk.tickets.service import views as views_service


@dataclass(frozen=True, slots=True)
class TicketRow:
    id: int
    href: str
    subject: str
    status: str
    status_label: str
    priority: str
    priority_label: str
    requester_name: str
    requester_href: str
    account_name: str
    account_href: str
    tier_label: str
    assignee_name: str
    group_name: str
    tags: list[str]
    updated_ago: str
    updated_iso: str
    created: str


def ticket_row(ticket: Ticket, now: datetime) -> TicketRow:
    account = ticket.account
    return TicketRow(
        id=ticket.id,
        href=f"/tickets/{ticket.id}",
        subject=ticket.subject,
        status=ticket.status,
        status_label=ticket.status_name,
        priority=ticket.priority,
        priority_label=display.PRIORITY_LABELS.get(ticket.priority, ticket.priority),
        requester_name=ticket.requester.name,
        requester_href=f"/people/{ticket.requester_id}",
        account_name=account.name if account is not None else "",
        account_href=f"/accounts/{account.id}" if account is not None else "",
        tier_label=display.TIER_LABELS.get(account.tier, account.tier) if account is not None else "",
        assignee_name=ticket.assignee.name if ticket.assignee is not None else "",
        group_name=ticket.group.name if ticket.group is not None else "",
        tags=ticket.tags,
        updated_ago=display.ago(ticket.updated_at, now),
        updated_iso=display.iso(ticket.updated_at),
        created=display.instant(ticket.created_at),
    )


def ticket_rows(tickets: Sequence[Ticket], now: datetime) -> list[TicketRow]:
    return [ticket_row(ticket, now) for ticket in tickets]


@dataclass(frozen=True, slots=True)
class ViewLink:
    id: int
    name: str
    count: int
    href: str
    current: bool


def sidebar(session: Session, actor: Actor, current_view_id: int | None = None) -> list[ViewLink]:
    """The views the actor sees, each with its live count."""
    return [
        ViewLink(
            id=entry.view.id,
            name=entry.view.name,
            count=entry.count,
            href=f"/views/{entry.view.id}",
            current=entry.view.id == current_view_id,
        )
        for entry in views_service.views_with_counts(session, actor)
    ]


@contextlib.contextmanager
def page_errors() -> Iterator[None]:
    """Not-found and refused become the HTML error pages (404 and 403)."""
    try:
        yield
    except NotFoundError as error:
        raise HTTPException(404, error.detail) from error
    except PermissionDeniedError as error:
        raise HTTPException(403, error.detail) from error
