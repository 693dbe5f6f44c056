"""Job entry points of billing, run by the job runner (:mod:`opsdesk.jobs`).

- ``billing.customer_email``: a billing notice (dunning, invoice reminders) with no ticket to
  reply on, sent through the channels domain's SMTP sender. The Message-ID is derived from the
  job's idempotency key, so a retry after a crash sends the very same message.
- Scheduled: the month-end invoice run and dunning retries (hourly; each picks up only what is
  due, so running more often than needed is harmless) and net-terms invoice reminders.
"""

from __future__ import annotations

import hashlib
import html
from datetime import timedelta

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.billing.service import dunning, invoicing
from opsdesk.billing.service.notices import EMAIL_JOB
from opsdesk.channels.email_composing import OutgoingEmail
from opsdesk.channels.email_sending import send_email
from opsdesk.config import Settings
from opsdesk.jobs import OutboxJob, job_handler, scheduled

BILLING_ACTOR = Actor.system("billing", via="job")


def outgoing_notice(job: OutboxJob, settings: Settings) -> OutgoingEmail:
    payload = job.payload
    domain = settings.support_address.partition("@")[2] or "opsdesk.invalid"
    stable = hashlib.sha256(job.idempotency_key.encode()).hexdigest()[:32]
    text = str(payload["body_text"])
    return OutgoingEmail(
        message_id=f"opsdesk.billing.{stable}@{domain}",
        from_name=settings.support_name,
        from_address=settings.support_address,
        to_address=str(payload["to"]),
        subject=str(payload["subject"]),
        text=text,
        html="<p>" + html.escape(text).replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>",
        automatic=True,
    )


@job_handler(EMAIL_JOB)
def send_customer_email(session: Session, job: OutboxJob) -> None:
    del session
    settings = Settings()
    send_email(settings, outgoing_notice(job, settings))


@scheduled("billing.invoice_run", every=timedelta(hours=1))
def invoice_run(session: Session) -> None:
    invoicing.run_invoicing(session, BILLING_ACTOR)


@scheduled("billing.dunning", every=timedelta(hours=1))
def dunning_run(session: Session) -> None:
    dunning.run_dunning(session, BILLING_ACTOR)


@scheduled("billing.invoice_reminders", every=timedelta(hours=6))
def invoice_reminders(session: Session) -> None:
    invoicing.send_invoice_reminders(session, BILLING_ACTOR)
