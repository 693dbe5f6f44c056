"""The person page (emails, accounts, tickets) and the account page (tier, plan, MRR, renewal,
owner, hot flag, people, tickets)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.tickets.pages import display
from opsdesk.tickets.pages.rows import TicketRow, ViewLink, page_errors, sidebar, ticket_rows
from opsdesk.tickets.service import directory
from opsdesk.tickets.service.accounts import access_account, may_see_payment
from opsdesk.tickets.service.people import access_person, list_people
from opsdesk.web.auth import page_actor
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)
PEOPLE_SHOWN = 50


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class AccountLink:
    name: str
    href: str
    relation: str
    tier_label: str


@dataclass(frozen=True, slots=True)
class PersonPage:
    id: int
    name: str
    emails: list[tuple[str, bool]]
    facts: list[Fact]
    accounts: list[AccountLink]
    tickets: list[TicketRow]
    views: list[ViewLink]


@dataclass(frozen=True, slots=True)
class PersonLink:
    name: str
    href: str
    email: str


@dataclass(frozen=True, slots=True)
class AccountPage:
    id: int
    name: str
    tier_label: str
    is_hot: bool
    facts: list[Fact]
    domains: list[str]
    notes: str
    people: list[PersonLink]
    more_people: bool
    unsolved: int
    tickets: list[TicketRow]
    views: list[ViewLink]


@router.get("/people/{person_id}", response_class=HTMLResponse)
def person_page(
    request: Request,
    person_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    with page_errors():
        person = access_person(session, actor, person_id)
    accounts: list[AccountLink] = []
    if person.primary_account is not None:
        account = person.primary_account
        accounts.append(
            AccountLink(
                account.name, f"/accounts/{account.id}", "primary", display.TIER_LABELS.get(account.tier, "")
            )
        )
    for link in person.other_accounts:
        accounts.append(
            AccountLink(
                link.account.name,
                f"/accounts/{link.account_id}",
                link.relation,
                display.TIER_LABELS.get(link.account.tier, ""),
            )
        )
    facts = [
        Fact("Language", person.language or "—"),
        Fact("Time zone", person.time_zone or "—"),
        Fact("Phone", person.phone or "—"),
        Fact("Customer since", display.instant(person.created_at)),
    ]
    facts += [Fact(f"{item.system.capitalize()} id", item.external_id) for item in person.external_ids]
    model = PersonPage(
        id=person.id,
        name=person.name,
        emails=[(entry.email, entry.is_primary) for entry in person.emails],
        facts=facts,
        accounts=accounts,
        tickets=ticket_rows(directory.tickets_of_person(session, actor, person.id), clock.now()),
        views=sidebar(session, actor),
    )
    return render(request, "tickets/person.html", {"page": model, "views": model.views})


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
def account_page(
    request: Request,
    account_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    with page_errors():
        account = access_account(session, actor, account_id)
    facts = [Fact("Plan", account.plan_name or "—")]
    if may_see_payment(actor):
        facts.append(Fact("MRR", display.money(account.mrr_amount_minor, account.currency)))
    facts += [
        Fact("Renewal", account.renewal_on.isoformat() if account.renewal_on is not None else "—"),
        Fact("Owner", account.owner.name if account.owner is not None else "—"),
        Fact("Customer since", display.instant(account.created_at)),
    ]
    people = list_people(session, actor, account_id=account.id, limit=PEOPLE_SHOWN + 1)
    model = AccountPage(
        id=account.id,
        name=account.name,
        tier_label=display.TIER_LABELS.get(account.tier, account.tier),
        is_hot=account.is_hot,
        facts=facts,
        domains=[entry.domain for entry in account.domains],
        notes=account.notes,
        people=[
            PersonLink(person.name, f"/people/{person.id}", person.primary_email or "")
            for person in people[:PEOPLE_SHOWN]
        ],
        more_people=len(people) > PEOPLE_SHOWN,
        unsolved=directory.unsolved_count_of_account(session, actor, account.id),
        tickets=ticket_rows(directory.tickets_of_account(session, actor, account.id), clock.now()),
        views=sidebar(session, actor),
    )
    return render(request, "tickets/account.html", {"page": model, "views": model.views})
