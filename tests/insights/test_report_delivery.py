"""The weekly review emailed to subscribed leaders: queued once per week and leader, sent over
real SMTP to a local server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.auth.errors import PermissionDeniedError
from opsdesk.channels.email_sending import send_email
from opsdesk.config import Settings
from opsdesk.insights.errors import InvalidMetricQueryError
from opsdesk.insights.models import ReportSubscription
from opsdesk.insights.service import report_delivery
from opsdesk.outbox import OutboxJob
from tests.insights.scenario import MONDAY, build
from tests.support.factories import make_user, staff_actor
from tests.support.smtp_sink import smtp_sink


def _jobs(db: Session) -> int:
    return int(
        db.scalar(
            select(func.count())
            .select_from(OutboxJob)
            .where(OutboxJob.kind == report_delivery.WEEKLY_REPORT_JOB)
        )
        or 0
    )


def test_subscribed_leaders_get_one_report_per_week(db: Session) -> None:
    build(db)
    admin = staff_actor(make_user(db, role="admin"))
    leader = make_user(db, role="lead")
    viewer = make_user(db, role="agent")
    report_delivery.set_subscription(db, admin, leader.id, "pdf")
    with pytest.raises(InvalidMetricQueryError):
        report_delivery.set_subscription(db, admin, viewer.id, "html")  # agents may not read reports
    with pytest.raises(PermissionDeniedError):
        report_delivery.set_subscription(db, staff_actor(viewer), leader.id, None)
    assert db.scalar(select(func.count()).select_from(ReportSubscription)) == 1

    next_monday = MONDAY + timedelta(days=7)
    assert report_delivery.enqueue_weekly_reports(db, next_monday.replace(hour=5)) == 0  # before 06:00
    assert report_delivery.enqueue_weekly_reports(db, next_monday.replace(hour=7)) == 1
    assert report_delivery.enqueue_weekly_reports(db, next_monday.replace(hour=8)) == 0  # already queued
    assert _jobs(db) == 1
    job = db.scalars(select(OutboxJob).where(OutboxJob.kind == report_delivery.WEEKLY_REPORT_JOB)).one()
    assert job.payload == {"week": "2026-W45", "user_id": leader.id, "format": "pdf"}

    with smtp_sink() as sink:
        settings = Settings(smtp_host=sink.host, smtp_port=sink.port, base_url="https://desk.example.com")
        outgoing = report_delivery.weekly_report_email(db, dict(job.payload), settings)
        assert outgoing is not None
        send_email(settings, outgoing)
    ((_sender, recipients, message),) = sink.received
    assert recipients == [leader.email]
    assert message["Subject"] == "Weekly ops review 2026-W45"
    html = message.get_body(("html",))
    assert html is not None
    assert "https://desk.example.com/api/v1/reports/weekly?week=2026-W45&amp;format=pdf" in html.get_content()
    assert message.get_content_type() == "multipart/mixed"
    (attached,) = list(message.iter_attachments())
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_filename() == "weekly-ops-review-2026-W45.pdf"
    assert attached.get_content().startswith(b"%PDF-")

    # An html subscriber gets the same mail without the attachment.
    html_only = report_delivery.weekly_report_email(db, {**job.payload, "format": "html"}, settings)
    assert html_only is not None
    assert html_only.attachments == ()

    report_delivery.set_subscription(db, staff_actor(leader), leader.id, None)
    assert report_delivery.enqueue_weekly_reports(db, next_monday + timedelta(days=7, hours=7)) == 0
