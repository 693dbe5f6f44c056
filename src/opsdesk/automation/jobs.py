"""Job entry points of automation: sending rule emails, and the scheduled automations and
escalation sweep."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy.orm import Session

from opsdesk.automation.actions import EMAIL_JOB
from opsdesk.automation.escalations import sweep_escalations
from opsdesk.automation.rules import run_automations
from opsdesk.channels.email_composing import OutgoingEmail
from opsdesk.channels.email_sending import send_email
from opsdesk.config import Settings
from opsdesk.jobs import OutboxJob, job_handler, scheduled
from opsdesk.tickets.html import text_to_html


@job_handler(EMAIL_JOB)
def send_rule_email(session: Session, job: OutboxJob) -> None:
    """A notification to staff. The Message-ID comes from the idempotency key, so a resend after a
    crash carries the same id and mail systems drop the duplicate."""
    del session
    settings = Settings()
    domain = settings.support_address.rsplit("@", 1)[-1]
    payload = job.payload
    send_email(
        settings,
        OutgoingEmail(
            message_id=f"opsdesk.rule.{hashlib.sha256(job.idempotency_key.encode()).hexdigest()[:32]}@{domain}",
            from_name="opsdesk",
            from_address=settings.support_address,
            to_address=str(payload["to"]),
            subject=str(payload["subject"]),
            text=str(payload["text"]),
            html=text_to_html(str(payload["text"])),
            automatic=True,
        ),
    )


@scheduled("automation.run_automations", every=timedelta(minutes=5))
def automations(session: Session) -> None:
    run_automations(session)


@scheduled("automation.sweep_escalations", every=timedelta(minutes=1))
def escalations(session: Session) -> None:
    sweep_escalations(session)
