"""Job entry points of insights: queue the weekly reports hourly, send each one by email."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from opsdesk.channels.email_sending import send_email
from opsdesk.config import Settings
from opsdesk.insights.service import rollups
from opsdesk.insights.service.report_delivery import (
    WEEKLY_REPORT_JOB,
    enqueue_weekly_reports,
    weekly_report_email,
)
from opsdesk.jobs import OutboxJob, job_handler, runner_database, scheduled


@scheduled("insights.weekly_reports", every=timedelta(hours=1))
def queue_weekly_reports(session: Session) -> None:
    enqueue_weekly_reports(session)


@scheduled("insights.rollups", every=timedelta(hours=1))
def refresh_rollups(session: Session) -> None:
    """Roll up the closed days not rolled up yet and re-roll the days changed tickets touched, in
    short transactions of the job's own (the job's session stays untouched)."""
    rollups.refresh_in_steps(runner_database(session))


@job_handler(WEEKLY_REPORT_JOB)
def send_weekly_report(session: Session, job: OutboxJob) -> None:
    settings = Settings()
    outgoing = weekly_report_email(session, dict(job.payload), settings)
    if outgoing is not None:
        send_email(settings, outgoing)
