"""Job entry points of the channels domain (discovered by the job runner).

``email.send``: hand one queued email to the SMTP server of the settings. The email's content and
Message-ID were fixed when it was queued, so a retry after a crash sends the very same message
(mail clients and servers drop a repeated Message-ID); a row already marked sent is not sent again.

``slack.post``: post a staff reply into the ticket's Slack thread (slack-sdk ``chat.postMessage``).

``chat.accept_timeout``: a waiting chat nobody accepted in time goes to email (a no-op when it was
accepted, ended or already offline).

``webhook.deliver``: one try of one webhook delivery; the try is logged and the next one scheduled
by :mod:`opsdesk.channels.service.webhooks`, so the handler does not raise on a refused delivery.
"""

from __future__ import annotations

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
from opsdesk.jobs import OutboxJob, job_handler


@job_handler(EMAIL_SEND_JOB)
def send_queued_email(session: Session, job: OutboxJob) -> None:
    outbound = session.get(OutboundEmail, int(job.payload["outbound_email_id"]))
    if outbound is not None and outbound.status == "sent":
        return
    send_email(Settings(), outgoing_from_payload(dict(job.payload["email"])))
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
    token = bot_token_for(session, str(payload["channel"]))
    if token is None:
        raise RuntimeError(f"Slack channel {payload['channel']} is no longer connected")
    post_in_thread(
        Settings(),
        token,
        channel=str(payload["channel"]),
        thread_ts=str(payload["thread_ts"]),
        text=str(payload["text"]),
    )


@job_handler(ACCEPT_TIMEOUT_JOB)
def expire_waiting_chat(session: Session, job: OutboxJob) -> None:
    expire_waiting(session, int(job.payload["conversation_id"]))
