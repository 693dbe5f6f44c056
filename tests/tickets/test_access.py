"""Loading one ticket for an actor: what its answer shows comes in one go, the rest on demand."""

from __future__ import annotations

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Ticket, TicketTag
from opsdesk.tickets.service.access import access_ticket, reload_ticket
from tests.support.databases import BoundDatabase, recorded_statements
from tests.support.factories import make_account, make_group, make_ticket, make_user, staff_actor


def test_a_ticket_loads_in_a_few_statements_and_the_rest_on_demand(
    db: Session, database: BoundDatabase
) -> None:
    make_account(db, name="Acme", domain="acme-access.test")
    group = make_group(db)
    agent = make_user(db, name="Ana Agent", groups=[group])
    opened = make_ticket(db, requester_email="jo@acme-access.test", tags=["vip", "billing"])
    tickets.update_ticket(db, staff_actor(agent), opened, {"assignee_id": agent.id, "group_id": group.id})
    db.commit()
    db.expunge_all()
    admin = staff_actor(make_user(db, role="admin"))
    db.expunge_all()

    with recorded_statements(database) as statements:
        ticket = access_ticket(db, admin, opened.id, for_update=True)
        # What the ticket's answer and page show:
        shown = (
            ticket.requester.primary_email,
            ticket.account.name if ticket.account else None,
            ticket.assignee.name if ticket.assignee else None,
            ticket.group.name if ticket.group else None,
            ticket.status_name,
            ticket.tags,
        )
    assert shown == ("jo@acme-access.test", "Acme", "Ana Agent", group.name, "New", ["billing", "vip"])
    # The ticket with its many-to-ones, the requester's emails, the tags (it was eight with the
    # mappers' eager defaults: external ids, other accounts, domains, owners, memberships).
    assert len(statements) <= 3, statements
    # The rest still loads when something asks for it.
    assert [domain.domain for domain in ticket.account.domains] == ["acme-access.test"]
    assert ticket.requester.external_ids == []
    assert [membership.group_id for membership in ticket.assignee.memberships] == [group.id]
    assert isinstance(ticket, Ticket)


def test_reload_reads_the_current_state_in_a_few_statements(db: Session, database: BoundDatabase) -> None:
    opened = make_ticket(db, tags=["vip"])
    first, second = make_user(db, name="First Agent"), make_user(db, name="Second Agent")
    tickets.update_ticket(db, staff_actor(first), opened, {"assignee_id": first.id})
    ticket_id, second_id, email = opened.id, second.id, opened.requester.primary_email
    db.commit()
    # Only the ticket refers to its requester now, as in a request that loaded it.
    db.expunge_all()
    del opened, first, second
    ticket = access_ticket(db, staff_actor(make_user(db, role="admin")), ticket_id, for_update=True)
    # A change made behind the session's back (as a reaction's Core statement would).
    db.execute(update(Ticket).where(Ticket.id == ticket_id).values(priority="urgent", assignee_id=second_id))
    db.execute(insert(TicketTag).values(ticket_id=ticket_id, tag="billing"))
    with recorded_statements(database) as statements:
        reloaded = reload_ticket(db, ticket)
        shown = (
            reloaded.priority,
            reloaded.tags,
            reloaded.assignee.name if reloaded.assignee else None,
            reloaded.requester.primary_email,
        )
    assert reloaded is ticket
    assert shown == ("urgent", ["billing", "vip"], "Second Agent", email)
    # The ticket's row, its tags and the new assignee; the requester comes from the session (it
    # is not read again with its emails, external ids and other accounts).
    assert len(statements) == 3, statements
    assert not any("FROM people" in statement for statement in statements), statements
