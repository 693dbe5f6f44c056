"""The metric layer on a known week: exact values, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from opsdesk.auth.errors import PermissionDeniedError
from opsdesk.insights.enums import Dimension, Grain, TimeBasis
from opsdesk.insights.errors import InvalidMetricQueryError, MetricUnavailableError
from opsdesk.insights.service.series import MetricQuery, metric_series, tickets_behind
from tests.insights.scenario import MONDAY, build
from tests.support.factories import make_user, staff_actor

WEEK_START = MONDAY.replace(hour=0)
WEEK_END = WEEK_START + timedelta(days=7)


def _lead(db: Session):
    return staff_actor(make_user(db, role="lead"))


def _query(metric: str, **options: object) -> MetricQuery:
    return MetricQuery(metric, WEEK_START, WEEK_END, **options)  # type: ignore[arg-type]


def test_first_reply_time_mean_median_p90_and_count(db: Session) -> None:
    build(db)
    series = metric_series(db, _lead(db), _query("first_reply_time"))
    (point,) = series.points
    assert point.count == 3  # t1 1h, t2 30m, t4 2h; t3 and t5 never replied
    assert point.mean == pytest.approx(4200, abs=0.01)
    assert point.p50 == pytest.approx(3600, abs=0.01)
    assert point.p90 == pytest.approx(6480, abs=0.01)  # 3600 + 0.8 * (7200 - 3600)


def test_rates_follow_the_design_definitions(db: Session) -> None:
    build(db)
    lead = _lead(db)

    def single(metric: str) -> tuple[int, float | None]:
        (point,) = metric_series(db, lead, _query(metric)).points
        return point.count, point.value

    # Four first solves; t3 had no reply so FCR is over t1, t2, t4: only t1 qualifies.
    assert single("first_contact_resolution") == (3, pytest.approx(1 / 3))
    assert single("solved_without_reply") == (4, pytest.approx(1 / 4))
    assert single("reopen_rate") == (4, pytest.approx(1 / 4))
    assert single("follow_up_rate") == (4, 0.0)
    assert single("csat") == (2, pytest.approx(0.5))
    assert single("tickets_created") == (5, 5.0)
    assert single("tickets_solved") == (4, 4.0)


def test_durations_from_messages_and_status_trail(db: Session) -> None:
    build(db)
    lead = _lead(db)
    (resolution,) = metric_series(db, lead, _query("full_resolution_time")).points
    # t1 2h, t2 5h, t3 10m, t4 6h (last solve)
    assert resolution.count == 4
    assert resolution.mean == pytest.approx((7200 + 18000 + 600 + 21600) / 4, abs=0.01)
    (next_reply,) = metric_series(db, lead, _query("next_reply_time")).points
    # t2: customer at +3h answered at +4h; t4: customer at +4h answered at +4h30.
    assert next_reply.count == 2
    assert next_reply.mean == pytest.approx((3600 + 1800) / 2, abs=0.01)
    (periodic,) = metric_series(db, lead, _query("periodic_update")).points
    assert periodic.count == 2  # t2 gap 3h30, t4 gap 2h30
    assert periodic.p50 == pytest.approx((12600 + 9000) / 2, abs=0.01)
    (wait,) = metric_series(db, lead, _query("requester_wait_time")).points
    # Nothing went to pending, so the wait is the time to the last solve minus solved spells:
    # t1 2h, t2 5h, t3 10m, t4 3h + (6h - 4h) = 5h.
    assert wait.count == 4
    assert wait.mean == pytest.approx((7200 + 18000 + 600 + 18000) / 4, abs=0.01)
    (handle,) = metric_series(db, lead, _query("handle_time")).points
    assert handle.mean == pytest.approx((600 + 1200 + 0 + 1800) / 4)


def test_by_dimension_with_labels_and_grain(db: Session) -> None:
    scenario = build(db)
    lead = _lead(db)
    by_group = metric_series(db, lead, _query("tickets_created", by=Dimension.GROUP, grain=Grain.DAY))
    assert [(p.bucket, p.label, p.count) for p in by_group.points] == [
        ("2026-11-02T00:00", scenario.group_a.name, 3),
        ("2026-11-02T00:00", scenario.group_b.name, 2),
    ]
    by_vendor = metric_series(db, lead, _query("first_reply_time", by=Dimension.VENDOR, grain=Grain.WEEK))
    assert {(p.bucket, p.key, p.count) for p in by_vendor.points} == {
        ("2026-11-02T00:00", "in-house", 2),
        ("2026-11-02T00:00", "Acme BPO", 1),
    }
    by_tier = metric_series(db, lead, _query("tickets_created", by=Dimension.TIER, grain=Grain.MONTH))
    assert {(p.bucket, p.key, p.count) for p in by_tier.points} == {
        ("2026-11-01T00:00", "enterprise", 1),
        ("2026-11-01T00:00", None, 4),
    }
    hourly = metric_series(db, lead, _query("tickets_solved", grain=Grain.HOUR))
    assert [(p.bucket, p.count) for p in hourly.points] == [
        ("2026-11-02T09:00", 1),
        ("2026-11-02T11:00", 1),
        ("2026-11-02T14:00", 1),
        ("2026-11-02T15:00", 1),
    ]


def test_tickets_behind_a_point_are_exactly_those_counted(db: Session) -> None:
    scenario = build(db)
    lead = _lead(db)
    query = _query("first_reply_time", by=Dimension.GROUP)
    total, page = tickets_behind(db, lead, query, key=str(scenario.group_a.id))
    assert total == 2
    assert {ticket.id for ticket in page} == {scenario.t1.id, scenario.t4.id}
    filtered = metric_series(db, lead, query.with_filter(Dimension.CHANNEL, "web"))
    assert [(p.key, p.count) for p in filtered.points] == [(str(scenario.group_a.id), 1)]
    unassigned, _ = tickets_behind(db, lead, _query("tickets_created", by=Dimension.AGENT), key="none")
    assert unassigned == 2


def test_bad_queries_are_refused_with_reasons(db: Session) -> None:
    lead = _lead(db)
    with pytest.raises(InvalidMetricQueryError) as unknown:
        metric_series(db, lead, _query("happiness"))
    assert unknown.value.fields[0].location == ("query", "metric")
    with pytest.raises(InvalidMetricQueryError):
        metric_series(db, lead, MetricQuery("csat", WEEK_END, WEEK_START))
    with pytest.raises(InvalidMetricQueryError):
        metric_series(db, lead, _query("csat", filters={Dimension.GROUP: "abc"}))
    with pytest.raises(MetricUnavailableError, match="not available until the success domain exists"):
        metric_series(db, lead, _query("nps"))
    with pytest.raises(MetricUnavailableError, match="business calendar"):
        metric_series(db, lead, _query("first_reply_time", time_basis=TimeBasis.BUSINESS))
    with pytest.raises(InvalidMetricQueryError) as calendar_only:
        metric_series(db, lead, _query("handle_time", time_basis=TimeBasis.BUSINESS))
    assert calendar_only.value.fields[0].location == ("query", "basis")
    with pytest.raises(PermissionDeniedError):
        metric_series(db, staff_actor(make_user(db, role="agent")), _query("csat"))
