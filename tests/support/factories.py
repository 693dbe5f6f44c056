"""Typed factories that build test data through the real services."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from sqlalchemy.orm import Session

from opsdesk.auth import service as auth_service
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import Group, User
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Account, AccountDomain, Ticket

SYSTEM = Actor.system("tests")
_sequence = itertools.count(1)


def make_user(
    session: Session,
    *,
    role: str = "agent",
    name: str | None = None,
    email: str | None = None,
    groups: Sequence[Group] = (),
    password: str | None = None,
    skills: Sequence[str] = (),
) -> User:
    number = next(_sequence)
    return auth_service.create_user(
        session,
        SYSTEM,
        email=email or f"{role}{number}@staff.example.com",
        name=name or f"{role.title()} {number}",
        role=role,
        password=password,
        group_ids=[group.id for group in groups],
        skills=skills,
    )


def make_group(session: Session, name: str | None = None) -> Group:
    return auth_service.create_group(session, SYSTEM, name=name or f"Group {next(_sequence)}")


def make_account(
    session: Session,
    *,
    name: str | None = None,
    domain: str | None = None,
    tier: str = "business",
    mrr_amount_minor: int = 50_000,
) -> Account:
    account = Account(name=name or f"Account {next(_sequence)}", tier=tier, mrr_amount_minor=mrr_amount_minor)
    if domain:
        account.domains.append(AccountDomain(domain=domain))
    session.add(account)
    session.flush()
    return account


def make_ticket(
    session: Session,
    *,
    subject: str = "Cannot log in",
    body: str = "I get an error when I log in.",
    requester_email: str | None = None,
    actor: Actor = SYSTEM,
    **fields: object,
) -> Ticket:
    email = requester_email or f"customer{next(_sequence)}@customer.example.org"
    return tickets.create_ticket(
        session,
        actor,
        tickets.NewTicket(subject=subject, body_text=body, requester_email=email, **fields),  # type: ignore[arg-type]
    )


def staff_actor(user: User, via: str = "web") -> Actor:
    return Actor.for_user(user, via=via)
