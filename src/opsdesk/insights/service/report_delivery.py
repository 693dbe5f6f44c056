"""The weekly ops review emailed to chosen leaders, through the outbox.

Leaders subscribe (a lead or admin may subscribe anyone with ``report.read``). Once an hour the
scheduler calls :func:`enqueue_weekly_reports`: from Monday 06:00 UTC on, each subscriber gets one
outbox job for the last complete ISO week, keyed ``insights.weekly_report:<week>:<user>`` so no
week is sent twice however often it runs. The job renders the review and sends it by email (HTML
body, Markdown as the text part, and for ``pdf`` subscribers the PDF report attached as
``weekly-ops-review-<week>.pdf``; a link to it in the app either way) with a Message-ID fixed by
the key, so a retried delivery is dropped by mail servers as a duplicate.
"""

from __future__ import annotations

from datetime import datetime, time
from html import escape
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock, outbox
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import User
from opsdesk.auth.permissions import Permission, has_permission, require
from opsdesk.channels.email_composing import EmailAttachment, OutgoingEmail
from opsdesk.config import Settings
from opsdesk.errors import FieldProblem, NotFoundError
from opsdesk.insights import report
from opsdesk.insights.errors import InvalidMetricQueryError
from opsdesk.insights.models import ReportSubscription
from opsdesk.insights.service.weekly_review import last_complete_week, weekly_review
from opsdesk.outbox import OutboxJob

WEEKLY_REPORT_JOB = "insights.weekly_report"
SEND_FROM = time(6, 0)
FORMATS = ("html", "pdf")


def set_subscription(
    session: Session, actor: Actor, user_id: int, format: str | None
) -> ReportSubscription | None:
    """Subscribe ``user_id`` to the weekly review in ``format`` (html or pdf), or unsubscribe (None)."""
    if actor.user_id != user_id:
        require(actor, Permission.RULE_MANAGE)
    require(actor, Permission.REPORT_READ)
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} does not exist")
    if format is not None and format not in FORMATS:
        raise InvalidMetricQueryError("unknown format", fields=[FieldProblem(("format",), "html or pdf")])
    if format is not None and not has_permission(Actor.for_user(user), Permission.REPORT_READ):
        raise InvalidMetricQueryError(
            f"{user.name} may not read reports", fields=[FieldProblem(("user_id",), "needs report.read")]
        )
    subscription = session.scalar(
        select(ReportSubscription).where(
            ReportSubscription.user_id == user_id, ReportSubscription.report == "weekly"
        )
    )
    old = subscription.format if subscription else None
    if format is None:
        if subscription is not None:
            session.delete(subscription)
        subscription = None
    elif subscription is None:
        subscription = ReportSubscription(
            user_id=user_id, report="weekly", format=format, created_at=clock.now()
        )
        session.add(subscription)
    else:
        subscription.format = format
    session.flush()
    if old != format:
        audit.record(
            session,
            actor,
            entity_type="report_subscription",
            entity_id=user_id,
            action="updated",
            field="weekly",
            old=old,
            new=format,
        )
    return subscription


def enqueue_weekly_reports(session: Session, now: datetime | None = None) -> int:
    """One outbox job per subscriber for the last complete week; returns how many were new."""
    now = now or clock.now()
    if now.weekday() == 0 and now.time() < SEND_FROM:
        return 0
    week = last_complete_week(now)
    queued = 0
    for subscription in session.scalars(
        select(ReportSubscription).where(ReportSubscription.report == "weekly")
    ):
        key = f"{WEEKLY_REPORT_JOB}:{week}:{subscription.user_id}"
        if session.scalar(select(OutboxJob.id).where(OutboxJob.idempotency_key == key)) is not None:
            continue
        outbox.enqueue(
            session,
            WEEKLY_REPORT_JOB,
            {"week": week, "user_id": subscription.user_id, "format": subscription.format},
            idempotency_key=key,
        )
        queued += 1
    session.flush()
    return queued


def weekly_report_email(
    session: Session, payload: dict[str, Any], settings: Settings
) -> OutgoingEmail | None:
    """The email of one weekly report job; None when the leader is gone or unsubscribed."""
    user = session.get(User, int(payload["user_id"]))
    if user is None or not user.is_active:
        return None
    week = str(payload["week"])
    review = weekly_review(session, Actor.system("weekly report", via="job"), week)
    base = settings.base_url.rstrip("/")
    html = report.as_html(review, base_url=base)
    pdf_link = f"{base}/api/v1/reports/weekly?week={week}&format=pdf"
    text = report.as_markdown(review) + f"\nPDF: {pdf_link}\n"
    domain = settings.support_address.partition("@")[2] or "opsdesk.invalid"
    attachments: tuple[EmailAttachment, ...] = ()
    if payload.get("format", "pdf") == "pdf":
        attachments = (
            EmailAttachment(
                f"weekly-ops-review-{week}.pdf", "application/pdf", report.as_pdf(review, base_url=base)
            ),
        )
    return OutgoingEmail(
        message_id=f"opsdesk.weekly-report.{week}.{user.id}@{domain}",
        from_name="opsdesk reports",
        from_address=settings.support_address,
        to_address=user.email,
        subject=f"Weekly ops review {week}",
        text=text,
        html=html.replace("</body>", f'<p><a href="{escape(pdf_link)}">Download the PDF</a></p></body>'),
        automatic=True,
        attachments=attachments,
    )
