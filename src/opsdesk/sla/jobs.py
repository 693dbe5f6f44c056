"""SLA work on the job runner: the breach sweep (an indexed query over due targets, every
minute) and the recompute of due times after a business calendar is edited."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from opsdesk.jobs import job_handler, scheduled
from opsdesk.outbox import OutboxJob
from opsdesk.sla.bulk import recompute_due_times
from opsdesk.sla.calendars import RECOMPUTE_JOB
from opsdesk.sla.clocks import sweep_breaches


@scheduled("sla.sweep_breaches", every=timedelta(minutes=1))
def sweep(session: Session) -> None:
    sweep_breaches(session)


@job_handler(RECOMPUTE_JOB)
def recompute(session: Session, job: OutboxJob) -> None:
    calendar_id = job.payload.get("calendar_id")
    # The default calendar stands in for targets without one, so its edit is a pass over those too.
    recompute_due_times(session, calendar_ids=[int(calendar_id)] if calendar_id is not None else None)
