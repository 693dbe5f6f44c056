"""Job entry points of the channels domain (discovered by the job runner).

``email.send``: hand one queued email to the SMTP server of the settings. The email's content and
Message-ID were fixed when it was queued, so a retry after a crash sends the very same message
(mail clients and servers drop a repeated Message-ID); a row already marked sent is not sent again.

``slack.post``: post a staff reply into the ticket's Slack thread (slack-sdk ``chat.postMessage``).

``channels.poll_mailboxes`` (scheduled, every 10 s): queue one ``imap.poll`` job for each enabled
mailbox whose interval has passed and that no poller holds; ``imap.poll`` takes the mailbox's
lease and polls it (:mod:`opsdesk.channels.imap_polling`). A failed poll is recorded on the
mailbox (``last_error``) and tried again at the next interval, not retried at once.

``chat.accept_timeout``: a waiting chat nobody accepted in time goes to email (a no-op when it was
accepted, ended or already offline).

``webhook.deliver``: one try of one webhook delivery; the try is logged and the next one scheduled
by :mod:`opsdesk.channels.service.webhooks`, so the handler does not raise on a refused delivery.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.channels.email_sending import send_email
from opsdesk.channels.models import OutboundEmail
from opsdesk.channels.service.chat import ACCEPT_TIMEOUT_JOB, expire_waiting
from opsdesk.channels.service.outbound import EMAIL_SEND_JOB, outgoing_from_payload
from opsdesk.channels.service.slack import SLACK_POST_JOB, bot_token_for
from opsdesk.channels.service.webhooks import WEBHOOK_JOB, attempt_delivery
from opsdesk.channels.slack_client import post_in_thread
from opsdesk.config import Settings
from opsdesk.jobs import OutboxJob, enqueue, job_handler, runner_database, scheduled

log = logging.getLogger(__name__)
IMAP_POLL_JOB = "imap.poll"


@job_handler(EMAIL_SEND_JOB)
def send_queued_email(session: Session, job: OutboxJob) -> None:
    outbound = session.get(OutboundEmail, int(job.payload["outbound_email_id"]))
    if outbound is not None and outbound.status == "sent":
        return
    settings = Settings()
    send_email(settings, outgoing_from_payload(dict(job.payload["email"])))
    if outbound is not None:
        outbound.status = "sent"
        outbound.sent_at = clock.now()
        outbound.error = None


@job_handler(WEBHOOK_JOB)
def deliver_webhook(session: Session, job: OutboxJob) -> None:
    attempt_delivery(session, int(job.payload["delivery_id"]), manual=bool(job.payload.get("manual")))


@job_handler(SLACK_POST_JOB)
def post_to_slack(session: Session, job: OutboxJob) -> None:
    payload = job.payload
    settings = Settings()
    token = bot_token_for(session, settings, str(payload["channel"]))
    if token is None:
        raise RuntimeError(f"Slack channel {payload['channel']} is no longer connected")
    post_in_thread(
        settings,
        token,
        channel=str(payload["channel"]),
        thread_ts=str(payload["thread_ts"]),
        text=str(payload["text"]),
    )


@scheduled("channels.poll_mailboxes", every=timedelta(seconds=10))
def queue_mailbox_polls(session: Session) -> None:
    from opsdesk.channels.imap_polling import due_mailboxes

    for mailbox_id, period in due_mailboxes(session):
        key = f"{IMAP_POLL_JOB}:{mailbox_id}:{period}"
        if session.scalar(select(OutboxJob.id).where(OutboxJob.idempotency_key == key)) is None:
            enqueue(session, IMAP_POLL_JOB, {"mailbox_id": mailbox_id}, idempotency_key=key, max_attempts=1)


@job_handler(IMAP_POLL_JOB)
def poll_imap_mailbox(session: Session, job: OutboxJob) -> None:
    """Poll one mailbox in short transactions of its own (one per message), under its lease."""
    from opsdesk.channels.imap_polling import poll_mailbox

    database = runner_database(session)
    try:
        poll_mailbox(
            database, Settings(), int(job.payload["mailbox_id"]), owner=f"{job.locked_by}:job{job.id}"
        )
    except Exception:  # recorded on the mailbox; the next interval tries again
        log.warning("polling IMAP mailbox %s failed", job.payload["mailbox_id"], exc_info=True)


@job_handler(ACCEPT_TIMEOUT_JOB)
def expire_waiting_chat(session: Session, job: OutboxJob) -> None:
    expire_waiting(session, int(job.payload["conversation_id"]))
