"""Seeding a small company on both databases gives data that obeys the ticket rules."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from types import ModuleType

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import AuditEvent, GroupMembership, User
from opsdesk.demo import seeder
from opsdesk.demo.context import SeedContext, SeedOptions
from opsdesk.errors import ConflictError, ValidationFailedError
from opsdesk.tickets.models import Account, AccountDomain, Message, Person, PersonEmail, Ticket, TicketTag

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
CLOSE_AFTER = timedelta(days=4)


@pytest.fixture
def seeded(db: Session) -> SeedContext:
    with clock.frozen(NOW):
        return seeder.seed_company(db, SeedOptions(tickets=400, days=30, seed=7, with_domains=False))


def test_counts_and_company(db: Session, seeded: SeedContext) -> None:
    assert db.scalar(select(func.count()).select_from(Ticket)) == 400
    assert len(seeded.ticket_ids) == 400
    assert db.scalar(select(func.count()).select_from(Message)) == seeded.message_count
    assert seeded.message_count > 2 * 400
    staff = db.scalars(select(User)).all()
    assert 28 <= len(staff) <= 32
    roles = Counter(user.role for user in staff)
    assert set(roles) == {"admin", "lead", "agent", "billing", "csm", "contractor", "viewer"}
    contractors = [user for user in staff if user.role == "contractor"]
    assert all(user.vendor for user in contractors)
    tiers = Counter(db.scalars(select(Account.tier)))
    assert set(tiers) == {"enterprise", "business", "self_serve", "consumer"}
    enterprise = db.scalars(select(Account).where(Account.tier == "enterprise")).all()
    assert all(account.owner is not None and account.owner.role == "csm" for account in enterprise)
    assert all(
        account.mrr_amount_minor >= 400_000 and account.renewal_on is not None for account in enterprise
    )
    # A company contact's email domain is one of their account's domains.
    rows = db.execute(
        select(PersonEmail.email, AccountDomain.domain)
        .join(Person, Person.id == PersonEmail.person_id)
        .join(AccountDomain, AccountDomain.account_id == Person.primary_account_id)
    ).all()
    assert rows
    assert all(email.endswith("@" + domain) for email, domain in rows)


def test_ticket_columns_agree_with_messages_and_trail(db: Session, seeded: SeedContext) -> None:
    tickets = db.scalars(select(Ticket).order_by(Ticket.id)).all()
    messages: dict[int, list[Message]] = defaultdict(list)
    for message in db.scalars(select(Message).order_by(Message.created_at, Message.id)):
        messages[message.ticket_id].append(message)
    status_trail: dict[int, list[AuditEvent]] = defaultdict(list)
    for event in db.scalars(
        select(AuditEvent).where(AuditEvent.field == "status").order_by(AuditEvent.created_at, AuditEvent.id)
    ):
        status_trail[event.ticket_id or 0].append(event)
    contractor_groups: dict[int, set[int]] = defaultdict(set)
    for user_id, group_id in db.execute(
        select(GroupMembership.user_id, GroupMembership.group_id)
        .join(User, User.id == GroupMembership.user_id)
        .where(User.role == "contractor")
    ):
        contractor_groups[user_id].add(group_id)

    statuses = Counter(ticket.status for ticket in tickets)
    assert set(statuses) >= {"new", "open", "pending", "solved", "closed"}
    for ticket in tickets:
        thread = messages[ticket.id]
        first = thread[0]
        assert first.author_kind == "customer"
        assert first.created_at == ticket.created_at
        public_staff = [m for m in thread if m.author_kind == "staff" and m.is_public]
        customer = [m for m in thread if m.author_kind == "customer"]
        assert ticket.staff_public_reply_count == len(public_staff)
        assert ticket.customer_message_count == len(customer)
        assert ticket.last_customer_message_at == customer[-1].created_at
        if public_staff:
            assert ticket.first_reply_at == public_staff[0].created_at
            assert ticket.last_staff_reply_at == public_staff[-1].created_at
            assert ticket.handle_seconds > 0
            assert ticket.assignee_id is not None
        else:
            assert ticket.first_reply_at is None
            assert ticket.last_staff_reply_at is None
        if ticket.status == "new":
            assert not public_staff
        trail = status_trail[ticket.id]
        assert (trail[-1].new_value if trail else "new") == ticket.status
        if trail:
            assert trail[-1].created_at == ticket.status_changed_at
        reopens = sum(1 for event in trail if (event.old_value, event.new_value) == ("solved", "open"))
        assert ticket.reopened_count == reopens
        if ticket.status in ("solved", "closed"):
            assert ticket.first_solved_at is not None
            assert ticket.solved_at is not None
            assert ticket.first_solved_at <= ticket.solved_at
        if ticket.status == "solved":
            assert ticket.solved_at is not None
            assert NOW - ticket.solved_at < CLOSE_AFTER + timedelta(hours=1)
        if ticket.status == "closed":
            assert ticket.closed_at is not None
            assert ticket.solved_at is not None
            assert ticket.closed_at - ticket.solved_at >= CLOSE_AFTER
        else:
            assert ticket.closed_at is None
        assert (ticket.custom_status_id is not None) == (ticket.status == "on_hold")
        if ticket.satisfaction_score is not None:
            assert ticket.status in ("solved", "closed")
            assert 1 <= ticket.satisfaction_score <= 5
            assert ticket.satisfaction_at is not None
            assert ticket.first_solved_at is not None
            assert ticket.satisfaction_at > ticket.first_solved_at
        instants = [ticket.created_at, ticket.updated_at, ticket.status_changed_at] + [
            m.created_at for m in thread
        ]
        assert all(NOW - timedelta(days=30) <= instant <= NOW for instant in instants)
        assert ticket.updated_at >= max(m.created_at for m in thread)
        if ticket.assignee_id in contractor_groups:
            assert ticket.group_id in contractor_groups[ticket.assignee_id]
        if ticket.account_id is not None:
            assert ticket.account_id == ticket.requester.primary_account_id


def test_audit_trail_has_creation_and_every_later_message(db: Session, seeded: SeedContext) -> None:
    created = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "created", AuditEvent.entity_type == "ticket")
    )
    by_ticket = {event.ticket_id: event for event in created}
    assert set(by_ticket) == set(seeded.ticket_ids)
    ticket = db.get_one(Ticket, seeded.ticket_ids[0])
    event = by_ticket[ticket.id]
    assert event.new_value["subject"] == ticket.subject
    assert event.new_value["tags"] == ticket.tags
    assert event.new_value["requester"] == ticket.requester.primary_email
    assert event.new_value["priority"] == ticket.priority
    assert event.new_value["channel"] == ticket.channel
    assert (event.actor_kind, event.actor_id, event.created_at) == (
        "customer",
        ticket.requester_id,
        ticket.created_at,
    )
    # The same fields the ticket service records when a ticket is created for real.
    from tests.support.factories import make_ticket

    real = make_ticket(db, subject="Real one", body="Made by the service.")
    db.flush()
    real_event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "created", AuditEvent.ticket_id == real.id)
    ).one()
    assert set(event.new_value) == set(real_event.new_value)
    message_events = db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.entity_type == "message")
    )
    assert message_events == seeded.message_count - len(seeded.ticket_ids)
    reply = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "reply_added", AuditEvent.actor_kind == "user")
    ).first()
    assert reply is not None
    assert reply.new_value == {"author": "staff", "public": True}
    assert db.scalar(select(func.count()).select_from(TicketTag)) >= 400


def test_seeded_database_keeps_its_indexes(db: Session, seeded: SeedContext) -> None:
    # The loader drops secondary indexes during the load; they must all be back.
    from opsdesk.demo.bulk import BulkWriter

    writer = BulkWriter(db)
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tickets' AND sql IS NOT NULL"
        if writer.dialect == "sqlite"
        else "SELECT indexname FROM pg_indexes WHERE tablename = 'tickets'"
    )
    from sqlalchemy import text

    names = set(db.scalars(text(query)))
    assert {"ix_tickets_status_group_id", "ix_tickets_created_at", "ix_tickets_requester_id"} <= names


def test_refuses_a_database_with_customers(db: Session, seeded: SeedContext) -> None:
    before = db.scalar(select(func.count()).select_from(Ticket))
    with pytest.raises(ConflictError):
        seeder.seed_company(db, SeedOptions(tickets=10, days=5))
    assert db.scalar(select(func.count()).select_from(Ticket)) == before


def test_bad_options_are_refused_before_anything_is_written(db: Session) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        seeder.seed_company(db, SeedOptions(tickets=-1, days=0))
    assert {".".join(map(str, problem.location)) for problem in refused.value.fields} == {"tickets", "days"}
    assert db.scalar(select(func.count()).select_from(User)) == 0


def test_domain_seed_modules_get_the_context(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[SeedContext] = []

    def seed(session: Session, context: SeedContext) -> None:
        assert session is db
        received.append(context)

    module = ModuleType("opsdesk.example.seed")
    module.seed = seed  # type: ignore[attr-defined]
    monkeypatch.setattr(seeder, "domain_modules", lambda part: [module] if part == "seed" else [])
    with clock.frozen(NOW):
        seeder.seed_company(db, SeedOptions(tickets=20, days=3))
    (context,) = received
    assert len(context.ticket_ids) == 20
    assert context.end == NOW
    assert context.start == NOW - timedelta(days=3)
    assert set(context.group_ids) == {"Frontline", "Technical Support", "Billing", "Enterprise", "Renewals"}
    assert context.admin_user_id in context.user_ids_by_role["admin"]
    assert set(context.domain_seconds) == {"opsdesk.example.seed"}
    assert {account.tier for account in context.accounts} == {
        "enterprise",
        "business",
        "self_serve",
        "consumer",
    }


def test_seeded_tickets_are_searchable_and_search_triggers_are_back(db: Session, seeded: SeedContext) -> None:
    from opsdesk.tickets.service.search import matching_ticket_ids
    from tests.support.factories import make_ticket

    ticket = db.get_one(Ticket, seeded.ticket_ids[-1])
    last_reply = db.scalars(
        select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id.desc())
    ).first()
    assert last_reply is not None
    word = max(last_reply.body_text.split(), key=len).strip(".,!?()\"'")
    assert ticket.id in set(db.scalars(matching_ticket_ids(db, word)))
    later = make_ticket(db, subject="Quokka sightings in the dashboard", body="Seen after the seed.")
    db.flush()
    assert set(db.scalars(matching_ticket_ids(db, "quokka"))) == {later.id}
