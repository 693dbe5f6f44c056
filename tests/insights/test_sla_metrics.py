"""SLA attainment, business-time durations and "breaching soon" from the SLA domain's tables, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.insights.definitions import METRICS
from opsdesk.insights.enums import Dimension, TimeBasis
from opsdesk.insights.errors import InvalidMetricQueryError, MetricUnavailableError
from opsdesk.insights.service import rollups
from opsdesk.insights.service.live_floor import live_floor
from opsdesk.insights.service.series import MetricQuery, compute_series, metric_series, rollup_window
from opsdesk.insights.service.weekly_review import weekly_review
from opsdesk.sla import calendars, policies
from opsdesk.sla.models import SlaTarget
from tests.insights.scenario import MONDAY, build
from tests.support.factories import SYSTEM, make_ticket, make_user, staff_actor

AFTERNOON = MONDAY.replace(hour=15)  # two business hours left on Monday (09:00-17:00 UTC)
WEEK = (MONDAY.replace(hour=0), MONDAY.replace(hour=0) + timedelta(days=7))


def _office(db: Session) -> None:
    office = calendars.save_calendar(
        db,
        SYSTEM,
        name="Office UTC",
        time_zone="UTC",
        hours={day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
        is_default=True,
    )
    policies.save_policy(
        db,
        SYSTEM,
        name="Everyone",
        conditions={},
        targets={"first_reply": {"minutes": 60}, "resolution": {"minutes": 240}},
        calendar_id=office.id,
        position=1,
    )


def _lead(db: Session):
    return staff_actor(make_user(db, role="lead"))


def test_sla_attainment_counts_targets_met_over_targets_settled(db: Session) -> None:
    _office(db)
    scenario = build(db)
    lead = _lead(db)
    settled = {
        (ticket_id, metric): status
        for ticket_id, metric, status in db.execute(
            select(SlaTarget.ticket_id, SlaTarget.metric, SlaTarget.status).where(
                SlaTarget.status.in_(("achieved", "breached"))
            )
        )
    }
    # First reply within 60 minutes: t1 (exactly 1h) and t2 (30m) met, t4 (2h) missed.
    assert settled[(scenario.t1.id, "first_reply")] == "achieved"
    assert settled[(scenario.t2.id, "first_reply")] == "achieved"
    assert settled[(scenario.t4.id, "first_reply")] == "breached"
    # Resolution within 4 hours: t1 (2h) met, t2 (5h) missed.
    assert settled[(scenario.t1.id, "resolution")] == "achieved"
    assert settled[(scenario.t2.id, "resolution")] == "breached"

    def point(metric: str, **options: object):
        (only,) = metric_series(db, lead, MetricQuery(metric, *WEEK, **options)).points  # type: ignore[arg-type]
        return only

    met = sum(1 for status in settled.values() if status == "achieved")
    overall = point("sla_attainment")
    assert (overall.count, overall.value) == (len(settled), pytest.approx(met / len(settled)))
    first = point("sla_attainment_first_reply")
    first_settled = [s for (_, metric), s in settled.items() if metric == "first_reply"]
    assert first.count == len(first_settled)
    assert first.value == pytest.approx(first_settled.count("achieved") / len(first_settled))
    by_policy = metric_series(db, lead, MetricQuery("sla_attainment", *WEEK, by=Dimension.SLA_POLICY))
    assert [(p.key, p.count) for p in by_policy.points] == [("Everyone", len(settled))]
    with pytest.raises(InvalidMetricQueryError):
        metric_series(db, lead, MetricQuery("tickets_created", *WEEK, by=Dimension.SLA_POLICY))
    # The daily rollups answer the same (today is well after the scenario week).
    rollups.rebuild(db, lead, now=MONDAY + timedelta(days=10))
    for metric in ("sla_attainment", "sla_attainment_first_reply", "sla_attainment_resolution"):
        for by in (None, Dimension.GROUP, Dimension.VENDOR):
            query = MetricQuery(metric, *WEEK, by=by)
            assert rollup_window(db, METRICS[metric], query) is not None
            rolled = compute_series(db, METRICS[metric], query)
            raw = compute_series(db, METRICS[metric], query, use_rollups=False)
            assert [(p.key, p.count, p.value) for p in rolled.points] == [
                (p.key, p.count, p.value) for p in raw.points
            ]
    review = weekly_review(db, lead, "2026-W45")
    figure = review.figure("sla_attainment")
    assert figure.unavailable is None
    assert (figure.count, figure.value) == (overall.count, overall.value)
    assert review.figure("sla_attainment_resolution").count >= 2


def test_business_time_durations_use_the_default_business_calendar(db: Session) -> None:
    lead = _lead(db)
    build(db, day=AFTERNOON)
    calendar_query = MetricQuery("full_resolution_time", *WEEK)
    business_query = MetricQuery("full_resolution_time", *WEEK, time_basis=TimeBasis.BUSINESS)
    with pytest.raises(MetricUnavailableError, match="business calendar"):
        metric_series(db, lead, business_query)
    _office(db)
    (calendar_point,) = metric_series(db, lead, calendar_query).points
    assert calendar_point.mean == pytest.approx((7200 + 18000 + 600 + 21600) / 4, abs=0.01)
    # Solves at 17:00, 20:00, 15:10 and 21:00: business time stops at 17:00.
    (business,) = metric_series(db, lead, business_query).points
    assert business.count == 4
    assert business.mean == pytest.approx((7200 + 7200 + 600 + 7200) / 4, abs=0.01)
    assert business.p50 == pytest.approx(7200, abs=0.01)
    (first_reply,) = metric_series(
        db, lead, MetricQuery("first_reply_time", *WEEK, time_basis=TimeBasis.BUSINESS)
    ).points
    assert first_reply.mean == pytest.approx(4200, abs=0.01)  # all replies before 17:00
    with pytest.raises(InvalidMetricQueryError):
        metric_series(db, lead, MetricQuery("handle_time", *WEEK, time_basis=TimeBasis.BUSINESS))


def test_live_floor_lists_targets_breaching_within_the_hour(db: Session) -> None:
    _office(db)
    lead = _lead(db)
    with clock.frozen(AFTERNOON) as frozen:
        ticket = make_ticket(db, priority="urgent")
        later = make_ticket(db)
        frozen.set(AFTERNOON + timedelta(minutes=10))
        floor = live_floor(db, lead)
    assert floor.breaching_soon_total == 2
    assert {row.ticket_id for row in floor.breaching_soon} == {ticket.id, later.id}
    assert {row.metric for row in floor.breaching_soon} == {"first_reply"}
    assert floor.breaching_soon[0].time_left_seconds == 50 * 60
    with clock.frozen(AFTERNOON - timedelta(hours=1)):
        assert live_floor(db, lead).breaching_soon_total == 0
