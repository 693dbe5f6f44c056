"""The weekly ops review and its report formats, on the known scenario week."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from opsdesk.insights import report
from opsdesk.insights.errors import InvalidMetricQueryError
from opsdesk.insights.service.weekly_review import last_complete_week, parse_week, weekly_review
from tests.insights.scenario import MONDAY, build
from tests.support.factories import make_user, staff_actor


def test_review_of_the_scenario_week(db: Session) -> None:
    build(db)
    build(db, day=MONDAY - timedelta(days=7))  # the same shape the week before
    lead = staff_actor(make_user(db, role="lead"))
    review = weekly_review(db, lead, "2026-W45")
    created = review.figure("tickets_created")
    assert (created.count, created.previous_count, created.change) == (5, 5, 0.0)
    first_reply = review.figure("first_reply_time")
    assert first_reply.count == 3
    assert first_reply.p50 == pytest.approx(3600, abs=0.01)
    assert first_reply.previous_value == pytest.approx(4200, abs=0.01)
    assert review.figure("sla_attainment").unavailable is None
    assert [(row.label, row.count, row.previous_count) for row in review.by_channel] == [
        ("email", 3, 3),
        ("chat", 1, 1),
        ("web", 1, 1),
    ]
    # Backlog at the end of W45: t5 of both weeks, the older one 7 days old.
    assert review.backlog_total == 2
    assert {row.label: row.count for row in review.backlog}["3-7 days"] == 1
    assert review.drivers_category_volume[0].label in {"billing", "login"}
    vendors = dict(zip(review.vendor_labels, review.vendors, strict=True))
    assert vendors["Acme BPO"]["tickets_solved"].count == 1
    assert vendors["in-house"]["tickets_solved"].count == 2  # t1, t4
    assert vendors["(unassigned)"]["tickets_solved"].count == 1  # t3
    assert review.summary[0] == "Volume held 0 % to 5 tickets (from 5)."


def test_report_formats_carry_the_same_figures(db: Session) -> None:
    build(db)
    review = weekly_review(db, staff_actor(make_user(db, role="lead")), "2026-W45")
    document = report.as_json(review)
    json.dumps(document)  # serialisable
    assert document["week"] == "2026-W45"
    headline = {item["metric"]: item for item in document["headline"]}
    assert headline["first_contact_resolution"]["count"] == 3
    assert headline["tickets_created"]["tickets_url"].startswith("/insights/tickets?metric=tickets_created")
    markdown = report.as_markdown(review)
    assert "| First reply time | 70m | 60m | 1.8h |" in markdown
    html = report.as_html(review, base_url="https://desk.example.com")
    assert 'role="img"' in html
    assert "https://desk.example.com/insights/tickets?metric=first_reply_time" in html
    pdf = report.as_pdf(review)
    assert pdf.startswith(b"%PDF-")


def test_week_parsing() -> None:
    start, label = parse_week("2026-W46")
    assert (start.isoformat(), label) == ("2026-11-09T00:00:00+00:00", "2026-W46")
    assert last_complete_week(MONDAY + timedelta(days=3)) == "2026-W44"
    with pytest.raises(InvalidMetricQueryError):
        parse_week("2026-46")
    with pytest.raises(InvalidMetricQueryError):
        parse_week("2026-W60")


def test_live_floor_trends_and_spikes(db: Session) -> None:
    from opsdesk import clock
    from opsdesk.insights.service.live_floor import live_floor
    from opsdesk.insights.service.trends import topic_trends
    from tests.support.factories import make_ticket

    scenario = build(db)
    lead = staff_actor(make_user(db, role="lead"))
    spike_hour = MONDAY + timedelta(weeks=4, hours=3)
    for week in range(1, 5):  # one refund ticket at this hour in each of the 4 weeks before
        with clock.frozen(spike_hour - timedelta(weeks=week, minutes=30)):
            make_ticket(db, subject="Refund please", category="refunds")
    with clock.frozen(spike_hour - timedelta(minutes=20)):
        for number in range(8):
            make_ticket(db, subject=f"Refund for invoice {number} charged twice", category="refunds")
    with clock.frozen(spike_hour):
        floor = live_floor(db, lead)
        trends = topic_trends(db, lead, days=7)
    assert floor.new_last_hour == 8
    assert floor.new_same_hour_last_week == 1
    (spike,) = [alert for alert in floor.spikes if alert.dimension == "category"]
    assert (spike.key, spike.observed, spike.expected) == ("refunds", 8, 1.0)
    assert dict(floor.backlog)["under 1 hour"] == 8
    oldest = {item.channel: item.ticket_id for item in floor.oldest_waiting}
    assert oldest["email"] == scenario.t5.id  # new since the scenario's Monday, never answered
    assert trends.tickets_read == 8
    assert trends.topics
    assert all(view.examples for view in trends.topics)
