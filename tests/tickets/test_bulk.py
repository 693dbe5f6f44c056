"""Bulk ticket changes through the service, on SQLite and PostgreSQL: per ticket by default (the
others are kept when one is refused, with the reason), all or nothing when asked, a bad request
as a whole changes nothing, one audit row per ticket per changed field, scope checked per ticket."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.auth.errors import PermissionDeniedError
from opsdesk.auth.models import AuditEvent
from opsdesk.errors import ValidationFailedError
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Ticket
from opsdesk.tickets.service.bulk import BulkRefusedError, bulk_update
from tests.support.factories import make_group, make_ticket, make_user, staff_actor


def _audit_rows(db: Session, ticket_id: int) -> list[tuple[str | None, object, object]]:
    rows = db.execute(
        select(AuditEvent.field, AuditEvent.old_value, AuditEvent.new_value)
        .where(AuditEvent.ticket_id == ticket_id, AuditEvent.action == "updated")
        .order_by(AuditEvent.id)
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


def _audit_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_each_ticket_changes_with_one_audit_row_per_field(db: Session) -> None:
    lead = staff_actor(make_user(db, role="lead"), via="api")
    group = make_group(db)
    assignee = make_user(db, role="agent", groups=[group])
    first, second = make_ticket(db, tags=["old"]), make_ticket(db)
    result = bulk_update(
        db,
        lead,
        [first.id, second.id, first.id],
        {
            "status": "pending",
            "priority": "urgent",
            "group_id": group.id,
            "assignee_id": assignee.id,
            "add_tags": ["Batch"],
            "remove_tags": ["old"],
        },
    )
    assert result.updated_ids == [first.id, second.id]
    assert result.unchanged_ids == []
    assert result.refused == []
    db.expire_all()
    for ticket_id in (first.id, second.id):
        ticket = db.get_one(Ticket, ticket_id)
        assert (ticket.status, ticket.priority, ticket.group_id, ticket.assignee_id) == (
            "pending",
            "urgent",
            group.id,
            assignee.id,
        )
        assert ticket.tags == ["batch"]
    fields = [row[0] for row in _audit_rows(db, first.id)]
    assert sorted(fields) == ["assignee_id", "group_id", "priority", "status", "tags"]
    assert ("tags", ["old"], ["batch"]) in _audit_rows(db, first.id)
    assert sorted(row[0] for row in _audit_rows(db, second.id)) == [  # type: ignore[type-var]
        "assignee_id",
        "group_id",
        "priority",
        "status",
        "tags",
    ]
    again = bulk_update(db, lead, [first.id], {"priority": "urgent"})
    assert again.updated_ids == []
    assert again.unchanged_ids == [first.id]


def test_a_refused_ticket_is_reported_and_the_others_are_kept(db: Session) -> None:
    agent = staff_actor(make_user(db, role="agent"))
    good = make_ticket(db)
    closed = make_ticket(db)
    tickets.update_ticket(db, agent, closed, {"status": "solved"})
    tickets.update_ticket(db, agent, closed, {"status": "closed"})
    audit_before = len(_audit_rows(db, closed.id))
    result = bulk_update(db, agent, [good.id, closed.id, 987654321], {"priority": "high"})
    assert result.updated_ids == [good.id]
    refused = {item.ticket_id: item for item in result.refused}
    assert set(refused) == {closed.id, 987654321}
    assert refused[closed.id].code == "ticket_closed"
    assert "closed" in refused[closed.id].detail
    assert refused[987654321].code == "ticket_not_found"
    db.expire_all()
    assert db.get_one(Ticket, good.id).priority == "high"
    assert db.get_one(Ticket, closed.id).priority == "normal"
    assert len(_audit_rows(db, closed.id)) == audit_before


def test_atomic_refuses_everything_when_one_is_refused(db: Session) -> None:
    agent = staff_actor(make_user(db, role="agent"))
    first = make_ticket(db)
    with pytest.raises(BulkRefusedError) as refused:
        bulk_update(db, agent, [first.id, 987654321], {"priority": "low"}, atomic=True)
    # The caller's transaction rolls back on the error (the API test checks nothing is kept).
    assert refused.value.status == 409
    assert [problem.location for problem in refused.value.fields] == [("tickets", 987654321)]
    assert "nothing was changed" in refused.value.detail


def test_a_bad_request_changes_nothing(db: Session) -> None:
    agent = staff_actor(make_user(db, role="agent"))
    ticket = make_ticket(db)
    viewer = make_user(db, role="viewer")
    before = _audit_count(db)
    cases = [
        ([], {"priority": "high"}, ("ids",)),
        ([ticket.id], {}, ("changes",)),
        ([ticket.id], {"priority": "whenever"}, ("changes", "priority")),
        ([ticket.id], {"status": "nonsense"}, ("changes", "status")),
        ([ticket.id], {"group_id": 987654}, ("changes", "group_id")),
        ([ticket.id], {"assignee_id": viewer.id}, ("changes", "assignee_id")),
        ([ticket.id], {"subject_line": "x"}, ("changes", "subject_line")),
        (list(range(1, 102)), {"priority": "high"}, ("ids",)),
    ]
    for ids, values, location in cases:
        with pytest.raises(ValidationFailedError) as refused:
            bulk_update(db, agent, ids, values)
        assert location in [problem.location for problem in refused.value.fields], values
    db.expire_all()
    assert db.get_one(Ticket, ticket.id).priority == "normal"
    assert _audit_count(db) == before


def test_permission_and_contractor_scope(db: Session) -> None:
    contractor_group, other_group = make_group(db), make_group(db)
    contractor = make_user(db, role="contractor", groups=[contractor_group])
    with pytest.raises(PermissionDeniedError):
        bulk_update(db, staff_actor(contractor), [make_ticket(db).id], {"priority": "high"})
    with pytest.raises(PermissionDeniedError):
        bulk_update(db, staff_actor(make_user(db, role="viewer")), [make_ticket(db).id], {"priority": "high"})
    lead = staff_actor(make_user(db, role="lead"))
    inside = make_ticket(db, group_id=contractor_group.id)
    outside = make_ticket(db, group_id=other_group.id)
    result = bulk_update(db, lead, [inside.id, outside.id], {"assignee_id": contractor.id})
    assert result.updated_ids == [inside.id]
    assert [(item.ticket_id, item.code) for item in result.refused] == [
        (outside.id, "contractor_out_of_scope")
    ]
    # Moving a contractor's ticket to a group they are not in is refused for that ticket too.
    moved = bulk_update(db, lead, [inside.id], {"group_id": other_group.id})
    assert [item.code for item in moved.refused] == ["contractor_out_of_scope"]
    db.expire_all()
    assert db.get_one(Ticket, inside.id).group_id == contractor_group.id
    assert db.get_one(Ticket, outside.id).assignee_id is None
