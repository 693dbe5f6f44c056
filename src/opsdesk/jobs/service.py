"""Dead letters: jobs that failed ``max_attempts`` times, listed for an admin who may retry them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import ConflictError, NotFoundError
from opsdesk.outbox import OutboxJob

DEAD = "dead"


class JobNotFoundError(NotFoundError):
    code = "job_not_found"


class JobNotDeadError(ConflictError):
    code = "job_not_dead"


def dead_letters(session: Session, actor: Actor, *, limit: int = 200) -> list[OutboxJob]:
    require(actor, Permission.JOB_MANAGE)
    return list(
        session.scalars(
            select(OutboxJob)
            .where(OutboxJob.status == DEAD)
            .order_by(OutboxJob.finished_at.desc())
            .limit(limit)
        )
    )


def job_counts(session: Session, actor: Actor) -> dict[str, int]:
    require(actor, Permission.JOB_MANAGE)
    rows = session.execute(select(OutboxJob.status, func.count()).group_by(OutboxJob.status)).all()
    return {str(status): int(count) for status, count in rows}


def retry_dead_letter(session: Session, actor: Actor, job_id: int) -> OutboxJob:
    """Give a dead job a fresh set of attempts, due now."""
    require(actor, Permission.JOB_MANAGE)
    job = session.get(OutboxJob, job_id)
    if job is None:
        raise JobNotFoundError(f"job {job_id} does not exist")
    if job.status != DEAD:
        raise JobNotDeadError(f"job {job_id} is {job.status}, not a dead letter")
    job.status = "pending"
    job.attempts = 0
    job.run_at = clock.now()
    job.finished_at = None
    job.locked_by = None
    job.locked_until = None
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="outbox_job",
        entity_id=job.id,
        action="retried",
        new={"kind": job.kind, "last_error": job.last_error},
    )
    return job
