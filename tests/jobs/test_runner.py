"""The job runner on SQLite and PostgreSQL: delivery, retries with backoff, dead letters,
leases, scheduled work (with stored state) and closing solved tickets as scheduled work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.jobs import job_handler, scheduled
from opsdesk.jobs import service as jobs_service
from opsdesk.jobs.backoff import retry_delay
from opsdesk.jobs.models import JobSchedule
from opsdesk.jobs.runner import Runner, RunnerOptions
from opsdesk.outbox import OutboxJob, enqueue
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Ticket
from tests.support.databases import BoundDatabase
from tests.support.factories import make_ticket, make_user, staff_actor

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SEEN: list[tuple[str, str, int]] = []
PERIODS: list[str] = []


@job_handler("test.rename")
def rename_ticket(session: Session, job: OutboxJob) -> None:
    SEEN.append((job.kind, job.idempotency_key, job.attempts))
    ticket = session.get_one(Ticket, job.payload["ticket_id"])
    ticket.subject = job.payload["subject"]


@job_handler("test.fail")
def always_fail(session: Session, job: OutboxJob) -> None:
    del session
    raise RuntimeError(f"receiver down for {job.idempotency_key}")


@scheduled("test.tick", every=timedelta(minutes=10))
def tick(session: Session) -> None:
    del session
    PERIODS.append(clock.now().isoformat())


def runner(database: BoundDatabase, worker_id: str = "worker-a", **options: object) -> Runner:
    settings = {"concurrency": 1, "lease": timedelta(minutes=1), **options}
    return Runner(database, options=RunnerOptions(**settings), worker_id=worker_id)  # type: ignore[arg-type]


def test_a_job_runs_once_and_its_writes_commit_with_it(database: BoundDatabase, db: Session) -> None:
    SEEN.clear()
    with clock.frozen(START):
        ticket = make_ticket(db)
        job = enqueue(
            db, "test.rename", {"ticket_id": ticket.id, "subject": "Renamed"}, idempotency_key="k-1"
        )
        db.commit()
        worker = runner(database)
        assert worker.run_until_idle() >= 1
        assert worker.run_until_idle() == 0
    db.expire_all()
    stored = db.get_one(OutboxJob, job.id)
    assert (stored.status, stored.attempts, stored.locked_by) == ("done", 1, "worker-a")
    assert stored.finished_at == START
    assert db.get_one(Ticket, ticket.id).subject == "Renamed"
    assert [entry for entry in SEEN if entry[1] == "k-1"] == [("test.rename", "k-1", 1)]


def test_failures_back_off_then_become_dead_letters_an_admin_can_retry(
    database: BoundDatabase, db: Session
) -> None:
    admin = staff_actor(make_user(db, role="admin"))
    with clock.frozen(START) as frozen:
        job = enqueue(db, "test.fail", {}, idempotency_key="fail-1", max_attempts=3)
        db.commit()
        worker = runner(database, backoff_base=timedelta(seconds=10))
        worker.run_until_idle()
        db.expire_all()
        first = db.get_one(OutboxJob, job.id)
        assert (first.status, first.attempts) == ("pending", 1)
        assert START + timedelta(seconds=5) <= first.run_at <= START + timedelta(seconds=10)
        assert first.last_error == "RuntimeError: receiver down for fail-1"
        assert worker.run_until_idle() == 0  # not due yet
        frozen.advance(timedelta(seconds=11))
        worker.run_until_idle()
        db.expire_all()
        second = db.get_one(OutboxJob, job.id)
        assert second.attempts == 2
        assert (
            frozen.instant + timedelta(seconds=10) <= second.run_at <= frozen.instant + timedelta(seconds=20)
        )
        frozen.advance(timedelta(seconds=21))
        worker.run_until_idle()
    db.expire_all()
    dead = db.get_one(OutboxJob, job.id)
    assert (dead.status, dead.attempts) == ("dead", 3)
    assert [row.id for row in jobs_service.dead_letters(db, admin)] == [job.id]

    agent = staff_actor(make_user(db, role="agent"))
    with pytest.raises(Exception, match=r"may not job\.manage"):
        jobs_service.retry_dead_letter(db, agent, job.id)
    assert db.get_one(OutboxJob, job.id).status == "dead"

    retried = jobs_service.retry_dead_letter(db, admin, job.id)
    assert (retried.status, retried.attempts) == ("pending", 0)
    with pytest.raises(jobs_service.JobNotDeadError):
        jobs_service.retry_dead_letter(db, admin, job.id)
    with pytest.raises(jobs_service.JobNotFoundError):
        jobs_service.retry_dead_letter(db, admin, 10**9)


def test_a_lost_lease_is_taken_over_and_the_first_worker_cannot_finish(
    database: BoundDatabase, db: Session
) -> None:
    with clock.frozen(START) as frozen:
        ticket = make_ticket(db)
        enqueue(db, "test.rename", {"ticket_id": ticket.id, "subject": "From B"}, idempotency_key="lease-1")
        db.commit()
        first, second = runner(database, "worker-a"), runner(database, "worker-b")
        claimed = [job for job in first.claim(10) if job.idempotency_key == "lease-1"]
        assert len(claimed) == 1
        assert [job for job in second.claim(10) if job.idempotency_key == "lease-1"] == []
        frozen.advance(timedelta(minutes=2))  # worker-a is gone; its lease runs out
        taken = [job for job in second.claim(10) if job.idempotency_key == "lease-1"]
        assert [job.attempts for job in taken] == [2]
        assert first.run_job(claimed[0]) is False  # its late work is rolled back
        assert second.run_job(taken[0]) is True
    db.expire_all()
    stored = db.scalars(select(OutboxJob).where(OutboxJob.idempotency_key == "lease-1")).one()
    assert (stored.status, stored.locked_by) == ("done", "worker-b")


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling() -> None:
    import random

    randomness = random.Random(7)
    delays = [retry_delay(n, base=timedelta(seconds=4), randomness=randomness) for n in (1, 2, 3, 4)]
    for attempts, delay in zip((1, 2, 3, 4), delays, strict=True):
        full = 4 * 2 ** (attempts - 1)
        assert full / 2 <= delay.total_seconds() <= full
    capped = retry_delay(40, base=timedelta(seconds=4), ceiling=timedelta(minutes=5))
    assert timedelta(seconds=150) <= capped <= timedelta(minutes=5)


def test_scheduled_work_runs_once_per_period_across_workers(database: BoundDatabase, db: Session) -> None:
    PERIODS.clear()
    with clock.frozen(START) as frozen:
        first, second = runner(database, "worker-a"), runner(database, "worker-b")
        first.run_until_idle()
        second.run_until_idle()
        assert [START.isoformat()] == PERIODS
        frozen.advance(timedelta(minutes=5))
        first.run_until_idle()
        second.run_until_idle()
        assert len(PERIODS) == 1
        frozen.advance(timedelta(minutes=26))  # two periods missed: run once, not three times
        second.run_until_idle()
        first.run_until_idle()
        assert len(PERIODS) == 2
    row = db.get_one(JobSchedule, "test.tick")
    assert row.every_seconds == 600
    assert row.next_run_at == START + timedelta(minutes=40)
    keys = db.scalars(
        select(OutboxJob.idempotency_key).where(OutboxJob.kind == "schedule:test.tick").order_by(OutboxJob.id)
    ).all()
    assert keys == [
        f"schedule:test.tick:{START.isoformat()}",
        f"schedule:test.tick:{(START + timedelta(minutes=30)).isoformat()}",
    ]


def test_closing_solved_tickets_is_scheduled_work(database: BoundDatabase, db: Session) -> None:
    agent = staff_actor(make_user(db, role="agent"))
    with clock.frozen(START - timedelta(days=5)):
        old = make_ticket(db)
        tickets.update_ticket(db, agent, old, {"status": "solved"})
    with clock.frozen(START - timedelta(days=1)):
        recent = make_ticket(db)
        tickets.update_ticket(db, agent, recent, {"status": "solved"})
    db.commit()
    with clock.frozen(START):
        runner(database).run_until_idle()
    db.expire_all()
    assert db.get_one(Ticket, old.id).status == "closed"
    assert db.get_one(Ticket, recent.id).status == "solved"
    assert (
        db.scalar(
            select(func.count()).select_from(JobSchedule).where(JobSchedule.name == "tickets.close_solved")
        )
        == 1
    )
