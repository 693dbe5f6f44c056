"""Status rules, replies, follow-ups, merges and closing: the life of a ticket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.errors import PermissionDeniedError
from opsdesk.auth.models import AuditEvent
from opsdesk.errors import ValidationFailedError
from opsdesk.tickets import service as tickets
from opsdesk.tickets.errors import TicketClosedError, TicketNotFoundError
from opsdesk.tickets.models import CustomFieldDefinition, Message, Ticket, TicketStatusDefinition
from tests.support.factories import SYSTEM, make_account, make_group, make_ticket, make_user, staff_actor

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _messages(db: Session, ticket: Ticket) -> list[Message]:
    return list(db.scalars(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id)))


def test_new_ticket_joins_account_by_domain_and_records_audit(db: Session) -> None:
    account = make_account(db, domain="acme.test")
    ticket = make_ticket(db, requester_email="Jane@ACME.test", tags=["VIP", "login issue"])
    assert ticket.status == "new"
    assert ticket.account_id == account.id
    assert ticket.requester.primary_email == "jane@acme.test"
    assert ticket.tags == ["login_issue", "vip"]
    created = db.scalars(select(AuditEvent).where(AuditEvent.ticket_id == ticket.id)).all()
    assert [event.action for event in created] == ["created"]


def test_staff_reply_sets_first_reply_and_opens(db: Session) -> None:
    agent = staff_actor(make_user(db))
    with clock.frozen(START) as frozen:
        ticket = make_ticket(db)
        frozen.advance(timedelta(minutes=30))
        tickets.add_message(db, agent, ticket, body_text="Try resetting your password.")
    db.refresh(ticket)
    assert ticket.status == "open"
    assert ticket.first_reply_at == START + timedelta(minutes=30)
    assert ticket.staff_public_reply_count == 1


def test_internal_note_is_not_a_reply(db: Session) -> None:
    agent = staff_actor(make_user(db))
    ticket = make_ticket(db)
    tickets.add_message(db, agent, ticket, body_text="Looks like SSO.", public=False)
    db.refresh(ticket)
    assert ticket.first_reply_at is None
    assert ticket.status == "new"


def test_customer_message_reopens_solved_and_counts_reopen(db: Session) -> None:
    agent = staff_actor(make_user(db))
    ticket = make_ticket(db, requester_email="bob@example.org")
    tickets.add_message(db, agent, ticket, body_text="Fixed.", status="solved")
    assert ticket.status == "solved"
    tickets.receive(
        db,
        SYSTEM,
        tickets.IncomingMessage(
            channel="email", from_email="bob@example.org", body_text="Still broken", ticket_id=ticket.id
        ),
    )
    db.refresh(ticket)
    assert ticket.status == "open"
    assert ticket.reopened_count == 1


def test_customer_message_moves_pending_to_open(db: Session) -> None:
    agent = staff_actor(make_user(db))
    ticket = make_ticket(db, requester_email="pat@example.org")
    tickets.add_message(db, agent, ticket, body_text="Which browser?", status="pending")
    tickets.receive(
        db,
        SYSTEM,
        tickets.IncomingMessage(
            channel="email", from_email="pat@example.org", body_text="Firefox", ticket_id=ticket.id
        ),
    )
    assert ticket.status == "open"
    db.refresh(ticket)
    assert ticket.reopened_count == 0


def test_message_to_closed_ticket_starts_linked_follow_up(db: Session) -> None:
    agent = staff_actor(make_user(db))
    with clock.frozen(START) as frozen:
        ticket = make_ticket(db, requester_email="kim@example.org", subject="Export fails")
        tickets.add_message(db, agent, ticket, body_text="Done", status="solved")
        frozen.advance(timedelta(days=5))
        closed = tickets.close_solved_tickets(db, SYSTEM)
        db.refresh(ticket)
        assert closed == 1
        assert ticket.status == "closed"
        received = tickets.receive(
            db,
            SYSTEM,
            tickets.IncomingMessage(
                channel="email",
                from_email="kim@example.org",
                subject="Re: Export fails",
                body_text="Again!",
                ticket_id=ticket.id,
            ),
        )
    assert received.created
    assert received.ticket.id != ticket.id
    assert received.ticket.follow_up_of_id == ticket.id
    with pytest.raises(TicketClosedError):
        tickets.add_message(db, agent, ticket, body_text="hello")


def test_solved_less_than_four_days_stays_solved(db: Session) -> None:
    agent = staff_actor(make_user(db))
    with clock.frozen(START) as frozen:
        ticket = make_ticket(db)
        tickets.add_message(db, agent, ticket, body_text="Done", status="solved")
        frozen.advance(timedelta(days=3, hours=23))
        assert tickets.close_solved_tickets(db, SYSTEM) == 0
    assert ticket.status == "solved"


def test_duplicate_external_id_is_ingested_once(db: Session) -> None:
    incoming = tickets.IncomingMessage(
        channel="email",
        from_email="dup@example.org",
        subject="Hi",
        body_text="Hello",
        external_id="<abc@mail.example>",
    )
    first = tickets.receive(db, SYSTEM, incoming)
    second = tickets.receive(db, SYSTEM, incoming)
    assert second.duplicate
    assert second.ticket.id == first.ticket.id
    assert (
        db.scalar(
            select(func.count()).select_from(Message).where(Message.external_id == "<abc@mail.example>")
        )
        == 1
    )


def test_merge_moves_messages_and_closes_source(db: Session) -> None:
    agent = staff_actor(make_user(db, role="lead"))
    source = make_ticket(db, subject="Billing A", body="first")
    target = make_ticket(db, subject="Billing B", body="second")
    tickets.merge_tickets(db, agent, source, target)
    db.refresh(source)
    assert source.status == "closed"
    assert source.merged_into_id == target.id
    bodies = [message.body_text for message in _messages(db, target)]
    assert "first" in bodies
    assert "second" in bodies
    # A customer writing to the merged ticket lands on the surviving one.
    received = tickets.receive(
        db,
        SYSTEM,
        tickets.IncomingMessage(
            channel="email", from_email="x@example.org", body_text="more", ticket_id=source.id
        ),
    )
    assert received.ticket.id == target.id


def test_custom_status_keeps_category(db: Session) -> None:
    db.add(TicketStatusDefinition(name="Waiting on engineering", category="on_hold"))
    db.flush()
    agent = staff_actor(make_user(db))
    ticket = make_ticket(db)
    tickets.update_ticket(db, agent, ticket, {"status": "Waiting on engineering"})
    assert ticket.status == "on_hold"
    assert ticket.status_name == "Waiting on engineering"


def test_bad_update_changes_nothing(db: Session) -> None:
    agent = staff_actor(make_user(db))
    ticket = make_ticket(db)
    before = db.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(ValidationFailedError) as caught:
        tickets.update_ticket(db, agent, ticket, {"priority": "extreme", "subject": "New subject"})
    assert [problem.location for problem in caught.value.fields] == [("priority",)]
    db.refresh(ticket)
    assert ticket.priority == "normal"
    assert ticket.subject == "Cannot log in"
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_custom_fields_are_typed_and_required_to_solve(db: Session) -> None:
    db.add_all(
        [
            CustomFieldDefinition(key="plan", label="Plan", field_type="dropdown", options=["free", "pro"]),
            CustomFieldDefinition(key="seats", label="Seats", field_type="number", is_required=True),
        ]
    )
    db.flush()
    agent = staff_actor(make_user(db))
    with pytest.raises(ValidationFailedError) as caught:
        make_ticket(db, custom_fields={"plan": "gold", "seats": "ten", "colour": "red"})
    locations = sorted(problem.location for problem in caught.value.fields)
    assert locations == [("custom_fields", "colour"), ("custom_fields", "plan"), ("custom_fields", "seats")]
    ticket = make_ticket(db, custom_fields={"plan": "pro"})
    with pytest.raises(ValidationFailedError):
        tickets.update_ticket(db, agent, ticket, {"status": "solved"})
    tickets.update_ticket(db, agent, ticket, {"custom_fields": {"seats": 12}, "status": "solved"})
    assert ticket.custom_fields == {"plan": "pro", "seats": 12}
    assert ticket.status == "solved"


def test_contractor_sees_only_own_groups(db: Session) -> None:
    own, other = make_group(db), make_group(db)
    contractor = staff_actor(make_user(db, role="contractor", groups=[own]))
    mine = make_ticket(db, group_id=own.id)
    theirs = make_ticket(db, group_id=other.id)
    assert tickets.access_ticket(db, contractor, mine.id).id == mine.id
    with pytest.raises(TicketNotFoundError):
        tickets.access_ticket(db, contractor, theirs.id)


def test_a_contractor_is_assigned_only_tickets_of_their_groups(db: Session) -> None:
    own, other = make_group(db), make_group(db)
    contractor = make_user(db, role="contractor", groups=[own])
    lead = staff_actor(make_user(db, role="lead"))
    theirs = make_ticket(db, group_id=other.id)
    # Only the assignee changes: the ticket keeps a group the contractor is not in.
    with pytest.raises(ValidationFailedError, match="assignment is not valid"):
        tickets.update_ticket(db, lead, theirs, {"assignee_id": contractor.id})
    db.refresh(theirs)
    assert theirs.assignee_id is None
    mine = make_ticket(db, group_id=own.id)
    tickets.update_ticket(db, lead, mine, {"assignee_id": contractor.id})
    assert mine.assignee_id == contractor.id
    # Moving a ticket into the contractor's group together with the assignment is fine.
    tickets.update_ticket(db, lead, theirs, {"group_id": own.id, "assignee_id": contractor.id})
    assert (theirs.group_id, theirs.assignee_id) == (own.id, contractor.id)


def test_viewer_cannot_reply(db: Session) -> None:
    viewer = staff_actor(make_user(db, role="viewer"))
    ticket = make_ticket(db)
    with pytest.raises(PermissionDeniedError):
        tickets.add_message(db, viewer, ticket, body_text="hi")
    assert len(_messages(db, ticket)) == 1
