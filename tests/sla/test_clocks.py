"""SLA policies and per-ticket targets driven by ticket events, the breach sweep, the views and
the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import AuditEvent
from opsdesk.sla import calendars, policies, queries
from opsdesk.sla.clocks import sweep_breaches
from opsdesk.sla.errors import InvalidCalendarError, InvalidPolicyError
from opsdesk.sla.models import SlaPolicy
from opsdesk.sla.seed import seed_defaults
from opsdesk.tickets import service as tickets
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_account, make_ticket, make_user, staff_actor
from tests.support.web import app_client, bearer_headers

MONDAY_1630_NY = datetime(2026, 5, 4, 20, 30, tzinfo=UTC)  # Monday 16:30 EDT
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    """A wall time in New York in May 2026 (EDT, UTC-4)."""
    return datetime(2026, 5, day, hour + 4, minute, tzinfo=UTC)


def office_policies(db: Session) -> None:
    office = calendars.save_calendar(
        db,
        SYSTEM,
        name="Office",
        time_zone="America/New_York",
        hours={day: [["09:00", "17:00"]] for day in WEEKDAYS},
        holiday_country="US",
        is_default=True,
    )
    policies.save_policy(
        db,
        SYSTEM,
        name="Urgent enterprise",
        conditions={"priority": ["urgent"], "tier": ["enterprise"]},
        targets={
            "first_reply": {"minutes": 60, "business_hours": True},
            "next_reply": {"minutes": 30, "business_hours": True},
            "periodic_update": {"minutes": 120, "business_hours": False},
            "resolution": {"minutes": 240, "business_hours": True},
        },
        calendar_id=office.id,
        pause_on_hold=True,
        position=1,
    )
    policies.save_policy(
        db, SYSTEM, name="Everyone", conditions={}, targets={"first_reply": {"minutes": 480}}, position=2
    )


def by_metric(db: Session, ticket_id: int) -> dict[str, queries.SlaItem]:
    return {item.metric: item for item in queries.sla_for_tickets(db, [ticket_id])[ticket_id]}


def test_targets_follow_the_ticket_in_business_time(db: Session) -> None:
    office_policies(db)
    agent = staff_actor(make_user(db, role="agent"))
    account = make_account(db, tier="enterprise", domain="bigco.example")
    with clock.frozen(MONDAY_1630_NY) as frozen:
        ticket = make_ticket(db, requester_email="ann@bigco.example", priority="urgent")
        sla = by_metric(db, ticket.id)
        assert ticket.account_id == account.id
        assert sorted(sla) == ["first_reply", "resolution"]
        # 30 business minutes on Monday, the rest from Tuesday 09:00.
        assert (sla["first_reply"].status, sla["first_reply"].due_at) == ("active", ny(5, 9, 30))
        assert sla["resolution"].due_at == ny(5, 12, 30)
        assert sla["first_reply"].business_hours is True
        assert sla["first_reply"].policy == "Urgent enterprise"

        frozen.set(ny(5, 9, 0))
        tickets.add_message(db, agent, ticket, body_text="Looking into it.")
        sla = by_metric(db, ticket.id)
        assert (sla["first_reply"].status, sla["first_reply"].achieved_at) == ("achieved", ny(5, 9, 0))
        assert (sla["periodic_update"].status, sla["periodic_update"].due_at) == ("active", ny(5, 11, 0))

        frozen.set(ny(5, 9, 10))
        tickets.add_message(db, SYSTEM, ticket, body_text="Any news?", author_person=ticket.requester)
        assert by_metric(db, ticket.id)["next_reply"].due_at == ny(5, 9, 40)

        frozen.set(ny(5, 10, 0))  # waiting on the customer: resolution and periodic update pause
        tickets.update_ticket(db, agent, ticket, {"status": "pending"})
        sla = by_metric(db, ticket.id)
        assert (sla["resolution"].status, sla["resolution"].due_at) == ("paused", None)
        assert sla["resolution"].time_left_seconds == 150 * 60
        assert sla["periodic_update"].status == "paused"
        assert sla["next_reply"].status == "active"

        frozen.set(ny(5, 11, 0))
        tickets.update_ticket(db, agent, ticket, {"status": "open"})
        sla = by_metric(db, ticket.id)
        assert (sla["resolution"].status, sla["resolution"].due_at) == ("active", ny(5, 13, 30))

        frozen.set(ny(5, 13, 31))
        assert sweep_breaches(db) == 3  # next reply, periodic update, resolution
        assert sweep_breaches(db) == 0  # a breach is an event once
        sla = by_metric(db, ticket.id)
        assert sla["resolution"].status == "breached"
        assert sla["resolution"].breached_at == ny(5, 13, 30)
        breaches = db.scalars(
            select(AuditEvent.new_value).where(
                AuditEvent.ticket_id == ticket.id, AuditEvent.action == "sla_breached"
            )
        ).all()
        assert sorted(value["metric"] for value in breaches) == [
            "next_reply",
            "periodic_update",
            "resolution",
        ]
        assert [row.ticket_id for row in queries.breached(db, agent)][:1] == [ticket.id]

        frozen.set(ny(5, 14, 0))
        tickets.update_ticket(db, agent, ticket, {"status": "solved"})
        sla = by_metric(db, ticket.id)
        assert (sla["resolution"].status, sla["resolution"].achieved_at) == ("breached", ny(5, 14, 0))
        assert queries.breached(db, agent) == []


def test_on_hold_pauses_per_policy_and_reopening_resumes_resolution(db: Session) -> None:
    office_policies(db)
    agent = staff_actor(make_user(db, role="agent"))
    make_account(db, tier="enterprise", domain="hold.example")
    with clock.frozen(ny(5, 9, 0)) as frozen:
        ticket = make_ticket(db, requester_email="bo@hold.example", priority="urgent")
        frozen.set(ny(5, 10, 0))
        tickets.update_ticket(db, agent, ticket, {"status": "on_hold"})
        assert by_metric(db, ticket.id)["resolution"].status == "paused"
        frozen.set(ny(5, 12, 0))
        tickets.update_ticket(db, agent, ticket, {"status": "solved"})
        assert by_metric(db, ticket.id)["resolution"].status == "achieved"
        frozen.set(ny(6, 9, 0))
        tickets.add_message(db, SYSTEM, ticket, body_text="Broken again", author_person=ticket.requester)
        resolution = by_metric(db, ticket.id)["resolution"]
        # One business hour used before the hold: three left from Wednesday 09:00.
        assert (resolution.status, resolution.due_at) == ("active", ny(6, 12, 0))


def test_priority_change_chooses_the_policy_again_and_policy_edits_apply_to_new_targets(db: Session) -> None:
    office_policies(db)
    agent = staff_actor(make_user(db, role="agent"))
    make_account(db, tier="enterprise", domain="shift.example")
    with clock.frozen(ny(5, 9, 0)) as frozen:
        ticket = make_ticket(db, requester_email="cy@shift.example", priority="normal")
        sla = by_metric(db, ticket.id)
        assert (sla["first_reply"].policy, sla["first_reply"].business_hours) == ("Everyone", False)
        assert sla["first_reply"].due_at == ny(5, 17, 0)
        frozen.set(ny(5, 9, 20))
        tickets.update_ticket(db, agent, ticket, {"priority": "urgent"})
        sla = by_metric(db, ticket.id)
        assert sla["first_reply"].policy == "Urgent enterprise"
        assert sla["first_reply"].due_at == ny(5, 10, 0)  # 20 minutes used of the new 60
        assert sla["resolution"].due_at == ny(5, 13, 0)

        urgent = db.scalars(select(SlaPolicy).where(SlaPolicy.name == "Urgent enterprise")).one()
        policies.save_policy(
            db,
            SYSTEM,
            policy_id=urgent.id,
            name=urgent.name,
            conditions=urgent.conditions,
            targets={"first_reply": {"minutes": 15, "business_hours": True}},
            calendar_id=urgent.calendar_id,
        )
        assert by_metric(db, ticket.id)["first_reply"].due_at == ny(5, 10, 0)  # unchanged
        newer = make_ticket(db, requester_email="di@shift.example", priority="urgent")
        assert by_metric(db, newer.id)["first_reply"].due_at == ny(5, 9, 35)


def test_bad_policies_and_calendars_are_refused_and_change_nothing(db: Session) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    before = db.scalar(select(func.count()).select_from(SlaPolicy))
    with pytest.raises(InvalidPolicyError) as refused:
        policies.save_policy(
            db,
            lead,
            name="Bad",
            conditions={"priority": ["burning"], "mood": ["sad"]},
            targets={"first_reply": {"minutes": 0}, "lunch": {"minutes": 5}},
            calendar_id=999_999,
        )
    locations = sorted(".".join(map(str, problem.location)) for problem in refused.value.fields)
    assert locations == [
        "calendar_id",
        "conditions.mood",
        "conditions.priority",
        "targets.first_reply.minutes",
        "targets.lunch",
    ]
    assert db.scalar(select(func.count()).select_from(SlaPolicy)) == before
    with pytest.raises(InvalidCalendarError) as bad_calendar:
        calendars.save_calendar(
            db, lead, name="Moon", time_zone="Moon/Base", hours={"mon": [["09:00", "17:00"]]}
        )
    assert [problem.location for problem in bad_calendar.value.fields] == [("time_zone",)]
    agent = staff_actor(make_user(db, role="agent"))
    with pytest.raises(Exception, match=r"may not rule\.manage"):
        policies.save_policy(db, agent, name="Mine", conditions={}, targets={"first_reply": {"minutes": 5}})


def test_seeded_defaults_give_urgent_and_high_tickets_a_first_reply_target(db: Session) -> None:
    seed_defaults(db)
    seed_defaults(db)  # idempotent
    assert db.scalar(select(func.count()).select_from(SlaPolicy)) == 4
    with clock.frozen(ny(5, 9, 0)):
        for priority, expected_policy in (("urgent", "Urgent"), ("high", "High"), ("low", "Standard")):
            ticket = make_ticket(db, priority=priority)
            assert by_metric(db, ticket.id)["first_reply"].policy == expected_policy


def test_sla_api_shape_and_views(database: BoundDatabase, db: Session, tmp_path: Path) -> None:
    office_policies(db)
    user = make_user(db, role="agent")
    make_account(db, tier="enterprise", domain="api.example")
    with clock.frozen(clock.now() - timedelta(minutes=5)):
        ticket = make_ticket(db, requester_email="ed@api.example", priority="low")
    headers = bearer_headers(db, user)
    db.commit()
    client = app_client(database, tmp_path)
    answer = client.get(f"/api/v1/tickets/{ticket.id}/sla", headers=headers)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [(item["metric"], item["status"], item["business_hours"], item["policy"]) for item in items] == [
        ("first_reply", "active", False, "Everyone")
    ]
    assert set(items[0]) >= {"metric", "status", "due_at", "business_hours", "policy"}
    assert datetime.fromisoformat(items[0]["due_at"]) > clock.now()
    ticket_json = client.get(f"/api/v1/tickets/{ticket.id}", headers=headers).json()

    def without_time_left(entries: list[dict[str, object]]) -> list[dict[str, object]]:
        return [
            {key: value for key, value in entry.items() if key != "time_left_seconds"} for entry in entries
        ]

    assert without_time_left(ticket_json["sla"]) == without_time_left(items)
    listed = client.get("/api/v1/tickets", headers=headers).json()["items"]
    assert [entry["sla"][0]["metric"] for entry in listed if entry["id"] == ticket.id] == ["first_reply"]
    assert client.get("/api/v1/tickets/999999/sla", headers=headers).status_code == 404
    assert client.get(f"/api/v1/tickets/{ticket.id}/sla").status_code == 401
    soon = client.get("/api/v1/sla/breaching", params={"within_minutes": 24 * 60}, headers=headers).json()
    assert [row["ticket_id"] for row in soon["items"]] == [ticket.id]
    assert client.get("/api/v1/sla/breaching", headers=headers).json()["items"] == []
    refused = client.post("/api/v1/sla/policies", json={"name": "X", "targets": {}}, headers=headers)
    assert refused.status_code == 403


def test_bulk_recompute_restores_due_times_from_the_bookkeeping(db: Session) -> None:
    from opsdesk.sla.bulk import recompute_active_targets
    from opsdesk.sla.models import SlaTarget

    office_policies(db)
    make_account(db, tier="enterprise", domain="bulk.example")
    with clock.frozen(MONDAY_1630_NY):
        ticket = make_ticket(db, requester_email="bo@bulk.example", priority="urgent")
        targets = db.scalars(select(SlaTarget).where(SlaTarget.ticket_id == ticket.id)).all()
        expected = {target.metric: target.due_at for target in targets}
        for target in targets:
            target.due_at = MONDAY_1630_NY  # as if a calendar had changed under them
        db.flush()
        assert recompute_active_targets(db) >= 2
        db.expire_all()
        assert {
            target.metric: target.due_at
            for target in db.scalars(select(SlaTarget).where(SlaTarget.ticket_id == ticket.id))
        } == expected
        assert expected["first_reply"] == ny(5, 9, 30)


def test_the_creation_answer_carries_the_targets_a_later_read_shows(
    database: BoundDatabase, db: Session, tmp_path: Path
) -> None:
    # The answer is built from the targets the creating transaction started (no query): it must
    # say what a read of the ticket says, for a policy with several metrics and for none.
    office_policies(db)
    make_account(db, tier="enterprise", domain="answer.example")
    headers = bearer_headers(db, make_user(db, role="agent"))
    db.commit()
    client = app_client(database, tmp_path)

    def without_time_left(entries: list[dict[str, object]]) -> list[dict[str, object]]:
        return [
            {key: value for key, value in entry.items() if key != "time_left_seconds"} for entry in entries
        ]

    for priority, email, metrics in (
        ("urgent", "boss@answer.example", ["first_reply", "resolution"]),
        ("low", "someone@elsewhere.example", ["first_reply"]),
    ):
        created = client.post(
            "/api/v1/tickets",
            headers=headers,
            json={
                "subject": "Down",
                "body": "It is down",
                "priority": priority,
                "requester": {"email": email},
            },
        )
        assert created.status_code == 201, created.text
        read = client.get(f"/api/v1/tickets/{created.json()['id']}", headers=headers).json()
        assert [item["metric"] for item in created.json()["sla"]] == metrics
        assert without_time_left(created.json()["sla"]) == without_time_left(read["sla"])
