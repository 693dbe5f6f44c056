"""Audit rows recorded in a batch: written together at the end, in order, or not at all."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth import audit
from opsdesk.auth.models import AuditEvent
from tests.support.databases import BoundDatabase, recorded_statements
from tests.support.factories import SYSTEM


def _trail(db: Session) -> list[tuple[str, int | None, str]]:
    return [
        (row.entity_type, row.entity_id, row.action)
        for row in db.scalars(
            select(AuditEvent).where(AuditEvent.entity_type.like("batch-%")).order_by(AuditEvent.id)
        )
    ]


def _record(db: Session, number: int) -> None:
    audit.record(
        db, SYSTEM, entity_type=f"batch-{number}", entity_id=number, action="created", new={"n": number}
    )


def test_rows_are_written_at_the_end_in_the_order_recorded(db: Session, database: BoundDatabase) -> None:
    with recorded_statements(database) as statements, audit.batched(db):
        for number in (3, 1, 2):
            _record(db, number)
        inside = len([statement for statement in statements if "audit_events" in statement])
    assert inside == 0
    assert _trail(db) == [("batch-3", 3, "created"), ("batch-1", 1, "created"), ("batch-2", 2, "created")]
    written = [statement for statement in statements if statement.startswith("INSERT INTO audit_events")]
    assert len(written) == 1  # one executemany: one round trip on PostgreSQL


def _fail_after_recording(db: Session) -> None:
    with audit.batched(db):
        _record(db, 1)
        raise RuntimeError("the change failed")


def test_a_failed_block_writes_nothing(db: Session) -> None:
    with pytest.raises(RuntimeError):
        _fail_after_recording(db)
    assert _trail(db) == []
    # The session records directly again afterwards.
    _record(db, 2)
    assert _trail(db) == [("batch-2", 2, "created")]


def test_nested_blocks_write_once_at_the_outer_end(db: Session) -> None:
    with audit.batched(db):
        _record(db, 1)
        with audit.batched(db):
            _record(db, 2)
        assert _trail(db) == []
        _record(db, 3)
    assert [row[1] for row in _trail(db)] == [1, 2, 3]
