"""The vectorized recompute from the database (``sla.bulk.recompute_due_times``) agrees with the
per-ticket path, writes only rows that moved, and leaves deadlines and paused targets alone; on
SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.jobs.registry import handler_for, load_handlers
from opsdesk.outbox import OutboxJob
from opsdesk.sla import bulk, calendars, policies
from opsdesk.sla.bulk import recompute_due_times
from opsdesk.sla.calendars import RECOMPUTE_JOB
from opsdesk.sla.clocks import _due
from opsdesk.sla.deadlines import start_deadline_target
from opsdesk.sla.models import ACTIVE_DUE_INDEX, ACTIVE_STATUS, SlaTarget
from opsdesk.tickets import service as tickets
from tests.support.factories import SYSTEM, make_ticket, make_user, staff_actor

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
START = datetime(2026, 3, 2, 13, 7, 11, 123456, tzinfo=UTC)  # a Monday; DST starts on the 8th in NY


def setup_policies(db: Session) -> tuple[int, int]:
    office = calendars.save_calendar(
        db,
        SYSTEM,
        name="Office",
        time_zone="America/New_York",
        hours={day: [["09:00", "12:30"], ["13:30", "17:00"]] for day in WEEKDAYS},
        holiday_country="US",
        is_default=True,
    )
    night = calendars.save_calendar(
        db,
        SYSTEM,
        name="Night desk",
        time_zone="Europe/Berlin",
        hours={"fri": [["22:00", "06:00"]], "sat": [["20:00", "02:00"]], "mon": [["08:00", "18:00"]]},
        closed_dates=["2026-03-16"],
    )
    policies.save_policy(
        db,
        SYSTEM,
        name="Urgent",
        conditions={"priority": ["urgent"]},
        targets={
            "first_reply": {"minutes": 45, "business_hours": True},
            "periodic_update": {"minutes": 90, "business_hours": False},
            "resolution": {"minutes": 600, "business_hours": True},
        },
        calendar_id=night.id,
        position=1,
    )
    policies.save_policy(
        db,
        SYSTEM,
        name="Others",
        conditions={},
        targets={
            "first_reply": {"minutes": 240, "business_hours": True},  # the default calendar
            "resolution": {"minutes": 3 * 24 * 60, "business_hours": False},
        },
        position=2,
    )
    return office.id, night.id


def expected_due(db: Session, target: SlaTarget) -> datetime:
    """The per-ticket path's due time for an active target's bookkeeping, with today's calendars."""
    calendar = calendars.calendar_by_id(db, target.calendar_id) if target.business_hours else None
    assert target.running_since is not None
    return _due(calendar, target.running_since, target.target_seconds - target.elapsed_seconds)


def make_backlog(db: Session) -> None:
    draw = random.Random(11)
    agent = staff_actor(make_user(db, role="agent"))
    with clock.frozen(START) as frozen:
        for number in range(24):
            frozen.set(START + timedelta(seconds=draw.uniform(0, 9 * 86_400)))
            ticket = make_ticket(db, priority="urgent" if number % 2 else "normal")
            if number % 3 == 0:
                frozen.advance(timedelta(seconds=draw.uniform(60, 3 * 3600)))
                tickets.update_ticket(db, agent, ticket, {"status": "pending"})
                frozen.advance(timedelta(seconds=draw.uniform(60, 2 * 86_400)))
                tickets.update_ticket(db, agent, ticket, {"status": "open"})  # elapsed time is kept
            if number % 4 == 1:
                frozen.advance(timedelta(seconds=draw.uniform(60, 3600)))
                tickets.add_message(db, agent, ticket, body_text="On it.")  # starts periodic update
            if number % 5 == 2:
                tickets.update_ticket(db, agent, ticket, {"status": "pending"})  # stays paused
            if number == 7:
                start_deadline_target(db, ticket, due_at=START + timedelta(days=20), reason="Dispute")


def active_policy_targets(db: Session) -> list[SlaTarget]:
    return list(
        db.scalars(
            select(SlaTarget)
            .where(SlaTarget.status == "active", SlaTarget.kind == "policy")
            .order_by(SlaTarget.id)
        )
    )


def test_recompute_from_the_database_matches_the_per_ticket_path(db: Session) -> None:
    _, night_id = setup_policies(db)
    make_backlog(db)
    db.flush()
    targets = active_policy_targets(db)
    truth = {target.id: target.due_at for target in targets}
    assert len(truth) >= 20
    assert {target.business_hours for target in targets} == {True, False}
    assert len({target.calendar_id for target in targets if target.business_hours}) == 2
    assert any(target.elapsed_seconds > 0 for target in targets)
    untouched = {
        target.id: (target.status, target.due_at)
        for target in db.scalars(select(SlaTarget).where(SlaTarget.kind == "deadline"))
    } | {
        target.id: (target.status, target.due_at)
        for target in db.scalars(select(SlaTarget).where(SlaTarget.status == "paused"))
    }
    assert any(status == "paused" for status, _ in untouched.values())

    now = START + timedelta(days=5)
    # Nothing moved yet: the stored due times are the per-ticket path's.
    result = recompute_due_times(db, now=now)
    assert (result.targets, result.changed) == (len(truth), 0)

    # Scramble the stored due times (as if they were written under another calendar).
    db.execute(update(SlaTarget).where(SlaTarget.id.in_(list(truth))).values(due_at=START))
    db.expire_all()
    result = recompute_due_times(db, now=now)
    assert (result.targets, result.changed) == (len(truth), len(truth))
    assert result.due_now == sum(1 for due in truth.values() if due is not None and due <= now)
    assert 0 < result.due_now < len(truth)
    db.expire_all()
    assert {target.id: target.due_at for target in active_policy_targets(db)} == truth
    assert {
        target.id: (target.status, target.due_at)
        for target in db.scalars(select(SlaTarget).where(SlaTarget.id.in_(list(untouched))))
    } == untouched

    # A calendar edit: the recompute gives what the per-ticket path gives with the new hours.
    night = calendars.list_calendars(db, SYSTEM)
    edited = next(row for row in night if row.id == night_id)
    calendars.save_calendar(
        db,
        SYSTEM,
        calendar_id=edited.id,
        name=edited.name,
        time_zone=edited.time_zone,
        hours={"mon": [["06:00", "10:00"]], "tue": [["06:00", "10:00"], ["23:00", "01:00"]]},
        closed_dates=["2026-03-09"],
    )
    # The edit queued the recompute job for that calendar; run it as the runner would.
    # (The latest by id: a heap's order is not insertion order once rows were updated.)
    jobs = select(OutboxJob).where(OutboxJob.kind == RECOMPUTE_JOB).order_by(OutboxJob.id)
    job = db.scalars(jobs).all()[-1]
    assert job.payload == {"calendar_id": night_id}
    load_handlers()
    handler = handler_for(RECOMPUTE_JOB)
    assert handler is not None
    before = {target.id: target.due_at for target in active_policy_targets(db)}
    with clock.frozen(now):
        handler(db, job)
    db.expire_all()
    after = active_policy_targets(db)
    moved = [target for target in after if target.due_at != before[target.id]]
    assert moved
    assert {target.calendar_id for target in moved} == {night_id}
    assert {target.id: target.due_at for target in after} == {
        target.id: expected_due(db, target) for target in after
    }
    assert recompute_due_times(db, now=now).changed == 0


def _index_definition(db: Session) -> str | None:
    if db.get_bind().dialect.name == "sqlite":
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    return db.execute(text(query), {"name": ACTIVE_DUE_INDEX}).scalar()


@pytest.mark.parametrize(
    ("rebuild", "chunk"), [(True, 250_000), (False, 7)], ids=["index-rebuilt", "index-moved-in-chunks"]
)
def test_a_recompute_moving_most_targets_writes_exactly_the_moved_rows(
    db: Session, monkeypatch: pytest.MonkeyPatch, rebuild: bool, chunk: int
) -> None:
    """New opening hours on both calendars move most due times: exactly those rows are written
    (their ``updated_at`` is the recompute's), each as the per-ticket path computes it, and the
    index of active due times is whole afterwards (SQLite rebuilds it past a share of moved rows;
    the test lowers the row floor so a small backlog takes that path, or raises the share so it
    does not; and read in chunks of 7 rows)."""
    office_id, night_id = setup_policies(db)
    make_backlog(db)
    db.flush()
    monkeypatch.setattr(bulk, "REBUILD_MIN_ROWS", 1 if rebuild else 10**9)
    index_before = _index_definition(db)
    assert index_before is not None
    before = {target.id: (target.due_at, target.updated_at) for target in active_policy_targets(db)}
    for calendar_id, hours in (
        (office_id, {day: [["07:30", "16:00"]] for day in WEEKDAYS}),
        (night_id, {"fri": [["20:00", "06:00"]], "sun": [["10:00", "14:00"]], "mon": [["07:00", "19:00"]]}),
    ):
        row = next(row for row in calendars.list_calendars(db, SYSTEM) if row.id == calendar_id)
        calendars.save_calendar(
            db, SYSTEM, calendar_id=row.id, name=row.name, time_zone=row.time_zone, hours=hours
        )
    db.flush()
    db.expire_all()
    targets = active_policy_targets(db)
    expected = {target.id: expected_due(db, target) for target in targets}
    should_move = {target_id for target_id, due in expected.items() if due != before[target_id][0]}
    assert len(should_move) > len(targets) / 2  # most of them: the rebuild path's share
    assert len(should_move) < len(targets)  # calendar-time targets stay

    now = START + timedelta(days=5, microseconds=321)
    result = recompute_due_times(db, now=now, chunk=chunk)
    db.expire_all()
    after = {target.id: (target.due_at, target.updated_at) for target in active_policy_targets(db)}

    assert (result.targets, result.changed) == (len(targets), len(should_move))
    assert {target_id: due for target_id, (due, _) in after.items()} == expected
    written = {target_id for target_id, (_, updated_at) in after.items() if updated_at == now}
    assert written == should_move
    assert all(after[target_id][1] == before[target_id][1] for target_id in set(after) - should_move)
    assert _index_definition(db) == index_before
    # The index answers as the table does: the sweep's and the view's population.
    due_soon = now + timedelta(hours=6)
    assert sorted(
        db.scalars(
            select(SlaTarget.id).where(SlaTarget.status == ACTIVE_STATUS, SlaTarget.due_at <= due_soon)
        )
    ) == sorted(target_id for target_id, due in expected.items() if due <= due_soon)
    assert recompute_due_times(db, now=now).changed == 0
