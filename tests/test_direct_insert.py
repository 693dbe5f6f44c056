"""Direct inserts: several rows in one statement, handed to the session as loaded objects."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from opsdesk.direct_insert import attach_as_loaded, insert_all_as_loaded, insert_as_loaded
from opsdesk.tickets.models import TicketTag
from tests.support.databases import BoundDatabase, recorded_statements
from tests.support.factories import make_ticket


def test_rows_come_back_in_the_order_given_with_their_own_keys(db: Session, database: BoundDatabase) -> None:
    ticket = make_ticket(db, tags=[])
    tags = ["zeta", "alpha", "mid"]  # not in key or alphabetical order: the order given counts
    with recorded_statements(database) as statements:
        rows = insert_all_as_loaded(db, TicketTag, [{"ticket_id": ticket.id, "tag": tag} for tag in tags])
    assert [row.tag for row in rows] == tags
    stored = dict(
        db.execute(select(TicketTag.id, TicketTag.tag).where(TicketTag.ticket_id == ticket.id)).all()
    )
    assert {row.id: row.tag for row in rows} == stored
    # The objects are the session's, clean: nothing is flushed again.
    assert all(row in db and row not in db.dirty and row not in db.new for row in rows)
    inserts = [statement for statement in statements if statement.startswith("INSERT INTO ticket_tags")]
    # One round trip on PostgreSQL; SQLite (in process) inserts row by row to know each key.
    assert len(inserts) == (len(tags) if database.is_sqlite else 1)


def test_no_rows_no_statement(db: Session, database: BoundDatabase) -> None:
    with recorded_statements(database) as statements:
        assert insert_all_as_loaded(db, TicketTag, []) == []
    assert statements == []


def test_an_object_inserted_as_loaded_changes_like_a_loaded_one(db: Session, database: BoundDatabase) -> None:
    ticket = make_ticket(db, tags=[])
    tag = insert_as_loaded(db, TicketTag, {"ticket_id": ticket.id, "tag": "before"})
    assert tag in db
    assert tag not in db.dirty
    assert tag not in db.new
    assert inspect(tag).persistent
    tag.tag = "after"
    with recorded_statements(database) as statements:
        db.flush()
    # Only the changed column is written: the other values counted as loaded.
    assert [statement.split(" SET ")[1].split(" WHERE")[0] for statement in statements] == [
        "tag=?" if database.is_sqlite else "tag=%(tag)s::VARCHAR"
    ]
    assert db.execute(select(TicketTag.tag).where(TicketTag.id == tag.id)).scalar_one() == "after"


def test_attaching_a_row_refuses_values_that_are_not_columns(db: Session) -> None:
    ticket = make_ticket(db, tags=[])
    row = {"id": 10**9, "ticket_id": ticket.id, "tag": "x", "colour": "red"}
    with pytest.raises(TypeError, match="colour"):
        attach_as_loaded(db, TicketTag, row)
