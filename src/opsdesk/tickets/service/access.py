"""Loading tickets for an actor: the only way a handler gets a ticket.

A ticket the actor may not see answers not-found, exactly like a ticket that does not exist, so
ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session, defaultload, lazyload

from opsdesk.auth.actor import Actor
from opsdesk.auth.models import User
from opsdesk.auth.permissions import Permission, is_group_scoped, require
from opsdesk.tickets.errors import TicketNotFoundError
from opsdesk.tickets.models import Account, Person, Ticket

# A ticket's many-to-ones, and the mappers' eager defaults below them that a ticket's answer and
# page never show (the requester's external ids and other accounts, each account's domains and
# owner, the assignee's memberships): loading those took five more queries and most of the CPU
# of a ticket change, for things that load on first use when something needs them.
_MANY_TO_ONES = ("requester", "account", "assignee", "group", "custom_status")
_NOT_SHOWN: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("requester", (Person.external_ids, Person.other_accounts, Person.primary_account)),
    ("account", (Account.domains, Account.owner)),
    ("assignee", (User.memberships,)),
)


def _not_shown_from(load: Callable[[Any], Any]) -> tuple[Any, ...]:
    """Options leaving what is not shown to load lazily, below each many-to-one loaded by ``load``."""
    return tuple(
        load(getattr(Ticket, name)).lazyload(deeper) for name, below in _NOT_SHOWN for deeper in below
    )


# One ticket with what its answer and its page show (requester and their emails, account,
# assignee, group, status, tags), in one joined query and two small ones.
_ACCESS_OPTIONS = _not_shown_from(defaultload)


def visibility_clause(actor: Actor) -> ColumnElement[bool]:
    """The SQL condition limiting tickets to those the actor may see."""
    if is_group_scoped(actor):
        group_ids = actor.user.group_ids if actor.user is not None else []
        return Ticket.group_id.in_(group_ids) if group_ids else Ticket.id.is_(None)
    return true()


def visible_tickets(actor: Actor) -> Select[Ticket]:
    require(actor, Permission.TICKET_READ)
    return select(Ticket).where(visibility_clause(actor))


def can_see(actor: Actor, ticket: Ticket) -> bool:
    if is_group_scoped(actor):
        return actor.user is not None and ticket.group_id in actor.user.group_ids
    return True


def access_ticket(session: Session, actor: Actor, ticket_id: int, *, for_update: bool = False) -> Ticket:
    """The ticket if it exists and the actor may see it; not-found otherwise."""
    require(actor, Permission.TICKET_READ)
    # SQLite ignores FOR UPDATE; its writers already hold the database lock (BEGIN IMMEDIATE).
    # Lock only the ticket row: PostgreSQL refuses FOR UPDATE on the outer-joined eager loads.
    ticket = session.get(
        Ticket, ticket_id, options=_ACCESS_OPTIONS, with_for_update={"of": Ticket} if for_update else None
    )
    if ticket is None or not can_see(actor, ticket):
        raise TicketNotFoundError(f"ticket {ticket_id} not found")
    return ticket


# A reload reads the ticket's own row and its tags again; what it points to (requester, account,
# assignee, group, status) comes from the session when the session holds it, as a many-to-one
# lazy load looks in the identity map before it queries. Re-populating those objects from a
# joined query cost a change about a third of its CPU, for rows the change does not touch (a
# reaction that changes them does so through the ORM, which keeps the session's objects current).
# (One a change set loads as access_ticket would: without what is not shown.)
_RELOAD_OPTIONS = (
    *_not_shown_from(lazyload),
    *(lazyload(getattr(Ticket, name)) for name in _MANY_TO_ONES if name not in dict(_NOT_SHOWN)),
)


def reload_ticket(session: Session, ticket: Ticket) -> Ticket:
    """The ticket read again (a change's reactions may have changed it further, even by a Core
    statement): its row and its tags, in two statements; the rows it points to come from the
    session when it holds them. ``Session.refresh`` would follow the mappers' eager defaults:
    eight statements."""
    # The identity map holds objects weakly: once the reload drops the ticket's references, the
    # requester (say) would be gone and its lazy load a query with all its collections. Held
    # here, each many-to-one finds its object in the map again, or loads the one a change set.
    held = [getattr(ticket, name) for name in _MANY_TO_ONES]
    reloaded = session.execute(
        select(Ticket)
        .where(Ticket.id == ticket.id)
        .options(*_RELOAD_OPTIONS)
        .execution_options(populate_existing=True)
    ).scalar_one()
    for name in _MANY_TO_ONES:
        getattr(reloaded, name)
    del held
    return reloaded
