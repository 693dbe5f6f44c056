"""Fixed-deadline targets (``start_deadline_target``): shown like any target, not paused, not moved
by policy changes, breached by the sweep (escalation matrix fires), achieved on solve; on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import AuditEvent
from opsdesk.automation import escalations
from opsdesk.automation.models import EscalationFiring
from opsdesk.sla import policies, queries
from opsdesk.sla.bulk import recompute_active_targets
from opsdesk.sla.clocks import sweep_breaches
from opsdesk.sla.deadlines import start_deadline_target
from opsdesk.sla.errors import InvalidDeadlineError
from opsdesk.sla.models import SlaTarget
from opsdesk.tickets import service as tickets
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_group, make_ticket, make_user, staff_actor
from tests.support.web import app_client, bearer_headers

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def items(db: Session, ticket_id: int) -> list[queries.SlaItem]:
    return queries.sla_for_tickets(db, [ticket_id])[ticket_id]


def test_a_deadline_is_shown_breaches_escalates_and_survives_pending_and_policy_changes(db: Session) -> None:
    policies.save_policy(
        db,
        SYSTEM,
        name="Normal",
        conditions={"priority": ["normal"]},
        targets={"resolution": {"minutes": 24 * 60}},
        position=1,
    )
    policies.save_policy(
        db,
        SYSTEM,
        name="Urgent",
        conditions={"priority": ["urgent"]},
        targets={"resolution": {"minutes": 60}},
        position=2,
    )
    group = make_group(db)
    make_user(db, role="lead", email="lead@staff.example.com", groups=[group])
    escalations.save_escalation(db, SYSTEM, priority="urgent", tier=None, notify=["group"])
    agent = staff_actor(make_user(db, role="agent"))
    with clock.frozen(START) as frozen:
        ticket = make_ticket(db, priority="normal", group_id=group.id)
        due = START + timedelta(hours=2)
        target = start_deadline_target(db, ticket, due_at=due, reason="Dispute dp_1 evidence due")
        shown = items(db, ticket.id)
        assert [(item.metric, item.kind, item.status, item.policy) for item in shown] == [
            ("resolution", "policy", "active", "Normal"),
            ("resolution", "deadline", "active", "Dispute dp_1 evidence due"),
        ]
        assert shown[1].due_at == due
        assert shown[1].business_hours is False
        assert shown[1].time_left_seconds == 2 * 3600
        assert shown[1].reason == "Dispute dp_1 evidence due"
        started = db.scalar(
            select(AuditEvent.new_value).where(
                AuditEvent.ticket_id == ticket.id, AuditEvent.action == "sla_deadline_started"
            )
        )
        assert started is not None
        assert started["reason"] == "Dispute dp_1 evidence due"

        frozen.advance(timedelta(minutes=10))  # pending pauses the policy's resolution, not the deadline
        tickets.update_ticket(db, agent, ticket, {"status": "pending"})
        by_kind = {item.kind: item for item in items(db, ticket.id)}
        assert (by_kind["policy"].status, by_kind["deadline"].status) == ("paused", "active")
        assert by_kind["deadline"].due_at == due
        tickets.update_ticket(db, agent, ticket, {"status": "open", "priority": "urgent"})
        by_kind = {item.kind: item for item in items(db, ticket.id)}
        assert by_kind["policy"].policy == "Urgent"
        assert (by_kind["deadline"].policy, by_kind["deadline"].due_at) == ("Dispute dp_1 evidence due", due)
        # A calendar edit's bulk recompute leaves the fixed due time alone.
        recompute_active_targets(db)
        db.expire_all()
        assert db.get_one(SlaTarget, target.id).due_at == due

        frozen.set(due - timedelta(seconds=1))
        assert sweep_breaches(db) == 1  # the urgent policy's resolution (due an hour in)
        assert db.get_one(SlaTarget, target.id).status == "active"
        frozen.set(due + timedelta(seconds=1))
        assert sweep_breaches(db) == 1
        db.expire_all()
        assert db.get_one(SlaTarget, target.id).status == "breached"
        fired = db.scalars(
            select(EscalationFiring.target_id).where(EscalationFiring.ticket_id == ticket.id)
        ).all()
        assert target.id in fired

        frozen.advance(timedelta(minutes=5))
        tickets.update_ticket(db, agent, ticket, {"status": "solved"})
        db.expire_all()
        solved = db.get_one(SlaTarget, target.id)
        assert (solved.status, solved.achieved_at) == (
            "breached",
            START + timedelta(hours=2, minutes=5, seconds=1),
        )


def test_solving_achieves_a_deadline_and_a_staff_reply_does_not(db: Session) -> None:
    agent = staff_actor(make_user(db, role="agent"))
    with clock.frozen(START) as frozen:
        ticket = make_ticket(db, priority="low")
        target = start_deadline_target(
            db, ticket, due_at=START + timedelta(days=7), reason="Chargeback response"
        )
        frozen.advance(timedelta(hours=1))
        tickets.add_message(db, agent, ticket, body_text="We are on it.")
        assert db.get_one(SlaTarget, target.id).status == "active"
        frozen.advance(timedelta(hours=1))
        tickets.update_ticket(db, agent, ticket, {"status": "solved"})
        db.expire_all()
        done = db.get_one(SlaTarget, target.id)
        assert (done.status, done.achieved_at) == ("achieved", START + timedelta(hours=2))
        frozen.advance(timedelta(days=8))
        assert sweep_breaches(db) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"metric": "answer"}, "metric"),
        ({"due_at": datetime(2026, 6, 2, 12, 0)}, "due_at"),  # naive: refused
        ({"reason": "  "}, "reason"),
        ({"reason": "x" * 501}, "reason"),
    ],
)
def test_bad_deadlines_are_refused_and_change_nothing(
    db: Session, changes: dict[str, object], field: str
) -> None:
    ticket = make_ticket(db)
    before = db.scalar(select(func.count()).select_from(SlaTarget))
    arguments: dict[str, object] = {
        "metric": "resolution",
        "due_at": START + timedelta(days=1),
        "reason": "Dispute",
    } | changes
    with pytest.raises(InvalidDeadlineError) as refused:
        start_deadline_target(db, ticket, **arguments)  # type: ignore[arg-type]
    assert [problem.location for problem in refused.value.fields] == [(field,)]
    assert db.scalar(select(func.count()).select_from(SlaTarget)) == before


def test_deadline_api(database: BoundDatabase, db: Session, tmp_path: Path) -> None:
    user = make_user(db, role="agent")
    ticket = make_ticket(db)
    headers = bearer_headers(db, user)
    db.commit()
    client = app_client(database, tmp_path)
    due = (clock.now() + timedelta(days=3)).replace(microsecond=0)
    made = client.post(
        f"/api/v1/tickets/{ticket.id}/sla/deadlines",
        json={"due_at": due.isoformat(), "reason": "Dispute dp_9"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    assert (made.json()["kind"], made.json()["metric"], made.json()["status"]) == (
        "deadline",
        "resolution",
        "active",
    )
    listed = client.get(f"/api/v1/tickets/{ticket.id}/sla", headers=headers).json()["items"]
    assert [(item["kind"], item["reason"]) for item in listed] == [("deadline", "Dispute dp_9")]
    assert datetime.fromisoformat(listed[0]["due_at"]) == due
    refused = client.post(
        f"/api/v1/tickets/{ticket.id}/sla/deadlines",
        json={"due_at": due.isoformat(), "reason": "", "metric": "nope"},
        headers=headers,
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert len(client.get(f"/api/v1/tickets/{ticket.id}/sla", headers=headers).json()["items"]) == 1
    missing = client.post(
        "/api/v1/tickets/999999/sla/deadlines",
        json={"due_at": due.isoformat(), "reason": "x"},
        headers=headers,
    )
    assert missing.status_code == 404
