"""Who can take tickets, and the recent tickets of a person or an account: the lists the ticket,
person and account pages show beside the main object.

Every list applies the actor's visibility (contractors see their groups' tickets only) and is one
query with its relationships loaded eagerly, so a page never issues a query per row.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.models import GroupMembership, User
from opsdesk.auth.permissions import Permission, is_group_scoped, require
from opsdesk.tickets.enums import UNSOLVED_STATUSES
from opsdesk.tickets.models import Ticket
from opsdesk.tickets.service.access import visibility_clause

RECENT_LIMIT = 25


def assignable_staff(session: Session, actor: Actor) -> list[User]:
    """Active staff who can be assigned tickets (viewers cannot); contractors only see the
    people of their own groups."""
    require(actor, Permission.TICKET_WRITE)
    statement = (
        select(User).where(User.is_active.is_(True), User.role != "viewer").order_by(User.name, User.id)
    )
    if is_group_scoped(actor):
        group_ids = actor.user.group_ids if actor.user is not None else []
        statement = statement.where(
            User.id.in_(
                select(GroupMembership.user_id).where(GroupMembership.group_id.in_(group_ids or [-1]))
            )
        )
    return list(session.scalars(statement))


def tickets_of_person(
    session: Session, actor: Actor, person_id: int, *, limit: int = RECENT_LIMIT
) -> list[Ticket]:
    """The person's most recent tickets the actor may see, newest first."""
    require(actor, Permission.TICKET_READ)
    statement = (
        select(Ticket)
        .where(Ticket.requester_id == person_id, visibility_clause(actor))
        .order_by(Ticket.id.desc())
        .limit(limit)
    )
    return list(session.scalars(statement).unique())


def tickets_of_account(
    session: Session, actor: Actor, account_id: int, *, limit: int = RECENT_LIMIT
) -> list[Ticket]:
    """The account's most recent tickets the actor may see, newest first."""
    require(actor, Permission.TICKET_READ)
    statement = (
        select(Ticket)
        .where(Ticket.account_id == account_id, visibility_clause(actor))
        .order_by(Ticket.id.desc())
        .limit(limit)
    )
    return list(session.scalars(statement).unique())


def unsolved_count_of_account(session: Session, actor: Actor, account_id: int) -> int:
    require(actor, Permission.TICKET_READ)
    statement = (
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.account_id == account_id,
            Ticket.status.in_(sorted(UNSOLVED_STATUSES)),
            visibility_clause(actor),
        )
    )
    return int(session.scalar(statement) or 0)
