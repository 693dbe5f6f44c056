"""The synthetic history of ``opsdesk bench insights`` keeps the invariants the services keep,
and a bulk load puts back the indexes and the keyword-search index it suspends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from opsdesk.insights.bulk_history import load
from opsdesk.sla.models import SlaTarget
from opsdesk.tickets.models import Message, Ticket
from opsdesk.tickets.service.search import matching_ticket_ids
from tests.support.factories import make_ticket

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
TABLES = ["tickets", "messages", "audit_events", "sla_targets"]


def _indexes(db: Session) -> set[str]:
    if db.get_bind().dialect.name == "postgresql":
        query = (
            "SELECT indexname FROM pg_indexes WHERE tablename IN :tables AND schemaname = current_schema()"
        )
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN :tables"
    return set(db.scalars(text(query).bindparams(bindparam("tables", TABLES, expanding=True))))


def _triggers(db: Session) -> set[str]:
    if db.get_bind().dialect.name == "postgresql":
        return set(db.scalars(text("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'ticket_search%'")))
    return set(
        db.scalars(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'ticket_search%'")
        )
    )


def test_a_bulk_load_restores_indexes_and_search_and_keeps_ticket_invariants(db: Session) -> None:
    indexes, triggers = _indexes(db), _triggers(db)
    assert len(indexes) > 10
    assert triggers
    loaded = load(db, 300, end=NOW, days=20, seed=3, rebuild_indexes=True)
    assert (_indexes(db), _triggers(db)) == (indexes, triggers)
    assert loaded.tickets == db.scalar(select(func.count()).select_from(Ticket)) == 300
    assert loaded.messages == db.scalar(select(func.count()).select_from(Message))
    assert loaded.sla_targets == db.scalar(select(func.count()).select_from(SlaTarget))
    # The search index was rebuilt from the rows: a subject word finds its tickets.
    refund = set(db.scalars(select(Ticket.id).where(Ticket.subject.like("Refund for invoice%"))))
    assert refund
    assert set(db.scalars(matching_ticket_ids(db, "refund invoice"))) >= refund

    staff = (
        select(
            Message.ticket_id,
            func.min(Message.created_at).label("first"),
            func.count().label("replies"),
        )
        .where(Message.author_kind == "staff", Message.is_public.is_(True))
        .group_by(Message.ticket_id)
    )
    replies = {ticket_id: (first, count) for ticket_id, first, count in db.execute(staff)}
    customers: dict[int, int] = dict(
        db.execute(
            select(Message.ticket_id, func.count())
            .where(Message.author_kind == "customer")
            .group_by(Message.ticket_id)
        ).all()
    )
    follow_ups = 0
    for ticket in db.scalars(select(Ticket)):
        first, count = replies.get(ticket.id, (None, 0))
        assert (ticket.first_reply_at, ticket.staff_public_reply_count) == (first, count)
        assert ticket.customer_message_count == customers[ticket.id]
        follow_ups += customers[ticket.id] - 1
    assert follow_ups > 0  # customers write between staff replies: next reply times exist
    targets = dict(db.execute(select(SlaTarget.metric, func.count()).group_by(SlaTarget.metric)).all())
    assert targets == {"first_reply": 300, "resolution": 300, "next_reply": follow_ups}
    # Explicit ids: the next ticket created through the service continues after them.
    made = make_ticket(db)
    assert made.id > max(db.scalars(select(Ticket.id).where(Ticket.id != made.id)))


def test_a_load_of_no_tickets_is_refused_and_writes_nothing(db: Session) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        load(db, 0, end=NOW)
    assert db.scalar(select(func.count()).select_from(Ticket)) == 0
