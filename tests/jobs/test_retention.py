"""Delivered jobs are deleted once old; recent ones, dead letters and pending work stay."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.jobs.registry import load_handlers, schedules
from opsdesk.jobs.retention import KEEP_FINISHED, prune_finished_jobs
from opsdesk.outbox import OutboxJob, enqueue


def _job(db: Session, key: str, status: str, finished_days_ago: float | None) -> None:
    job = enqueue(db, "http.post", {"url": "http://127.0.0.1:9/"}, idempotency_key=key)
    job.status = status
    if finished_days_ago is not None:
        job.finished_at = clock.now() - timedelta(days=finished_days_ago)


def test_old_delivered_jobs_are_deleted_and_nothing_else(db: Session) -> None:
    old_days = KEEP_FINISHED.days + 1
    _job(db, "retention-old-done", "done", old_days)
    _job(db, "retention-recent-done", "done", 1)
    _job(db, "retention-old-dead", "dead", old_days)
    _job(db, "retention-pending", "pending", None)
    db.flush()

    assert prune_finished_jobs(db) == 1

    left = set(
        db.scalars(select(OutboxJob.idempotency_key).where(OutboxJob.idempotency_key.like("retention-%")))
    )
    assert left == {"retention-recent-done", "retention-old-dead", "retention-pending"}
    assert prune_finished_jobs(db) == 0


def test_pruning_is_scheduled_work() -> None:
    load_handlers()
    assert "jobs.prune_finished" in {schedule.name for schedule in schedules()}
