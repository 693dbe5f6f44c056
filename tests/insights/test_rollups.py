"""Daily rollups answer exactly as the raw tables do (counts, rates, means), percentiles within
the histogram's documented bound, on SQLite and PostgreSQL; the hourly refresh follows changes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.insights import histogram
from opsdesk.insights.bulk_history import load
from opsdesk.insights.definitions import METRICS
from opsdesk.insights.enums import Dimension, Grain, MetricKind
from opsdesk.insights.models import DailyRollup
from opsdesk.insights.service import rollups
from opsdesk.insights.service.series import MetricQuery, MetricSeries, compute_series, rollup_window
from opsdesk.insights.sqltime import log_bin
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Ticket
from tests.insights.scenario import MONDAY, build
from tests.support.factories import make_group

NOW = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)
SYSTEM = Actor.system("test")


def _loaded(db: Session) -> None:
    load(db, 240, end=NOW, days=30, seed=11)
    rollups.rebuild(db, SYSTEM, now=NOW)


def _assert_same(rolled: MetricSeries, raw: MetricSeries) -> None:
    kind = rolled.definition.kind
    assert [(p.bucket, p.key, p.count) for p in rolled.points] == [
        (p.bucket, p.key, p.count) for p in raw.points
    ]
    for mine, exact in zip(rolled.points, raw.points, strict=True):
        if kind in (MetricKind.COUNT, MetricKind.RATE):
            assert mine.value == exact.value
        else:
            assert mine.mean == pytest.approx(exact.mean, rel=1e-9, abs=1e-6)
        if kind is MetricKind.SCORE:
            assert (mine.p50, mine.p90) == (exact.p50, exact.p90)
        elif kind is MetricKind.DURATION:
            assert None not in (exact.p50, exact.p90, mine.p50, mine.p90)
            assert exact.p50 is not None
            assert exact.p90 is not None
            assert mine.p50 is not None
            assert mine.p90 is not None
            assert histogram.within_bound(mine.p50, exact.p50), (mine, exact)
            assert histogram.within_bound(mine.p90, exact.p90), (mine, exact)
            assert mine.percentiles_estimated


def _compare(db: Session, query: MetricQuery) -> MetricSeries:
    """Rollups against raw tables for one query; returns the raw series."""
    definition = METRICS[query.metric]
    assert rollup_window(db, definition, query) is not None
    rolled = compute_series(db, definition, query)
    raw = compute_series(db, definition, query, use_rollups=False)
    _assert_same(rolled, raw)
    return raw


def test_every_metric_by_every_rolled_dimension_equals_the_raw_answer(db: Session) -> None:
    _loaded(db)
    # Starts mid-day and ends now (today is never rolled up): both edges come from raw tables.
    start = NOW - timedelta(days=21, hours=7)
    with_points: set[str] = set()
    for definition in rollups.rolled_metrics():
        for by in (None, *rollups.ROLLED_DIMENSIONS):
            for grain in (None, Grain.WEEK) if by is not None else (None, Grain.DAY, Grain.WEEK, Grain.MONTH):
                raw = _compare(db, MetricQuery(definition.name, start, NOW, by=by, grain=grain))
                if raw.points:
                    with_points.add(definition.name)
    # The synthetic history has SLA targets for first reply, next replies and resolution (not
    # periodic update) and customers writing between staff replies: every other metric was
    # compared on real points.
    assert with_points == {d.name for d in rollups.rolled_metrics()} - {"sla_attainment_periodic_update"}


def test_the_scenario_week_from_rollups_equals_raw_including_next_replies(db: Session) -> None:
    build(db)
    rollups.rebuild(db, SYSTEM, now=MONDAY + timedelta(days=9))
    week = (MONDAY.replace(hour=0), MONDAY.replace(hour=0) + timedelta(days=7))
    for metric in ("next_reply_time", "first_reply_time", "requester_wait_time", "periodic_update", "csat"):
        for by in (None, Dimension.GROUP, Dimension.VENDOR):
            raw = _compare(db, MetricQuery(metric, *week, by=by, grain=Grain.WEEK))
            assert raw.points
    (next_reply,) = compute_series(
        db, METRICS["next_reply_time"], MetricQuery("next_reply_time", *week)
    ).points
    assert next_reply.count == 2
    assert next_reply.mean == pytest.approx((3600 + 1800) / 2)


def test_filters_on_the_grouped_dimension_use_rollups_and_agree(db: Session) -> None:
    _loaded(db)
    start = NOW - timedelta(days=28)
    a_group = db.scalar(select(Ticket.group_id).where(Ticket.group_id.is_not(None)).limit(1))
    for metric in ("tickets_created", "first_reply_time", "csat", "satisfaction_score"):
        _compare(db, MetricQuery(metric, start, NOW).with_filter(Dimension.CHANNEL, "email"))
        _compare(
            db, MetricQuery(metric, start, NOW, by=Dimension.GROUP).with_filter(Dimension.GROUP, str(a_group))
        )
    # Two dimensions, an hour grain or by account: raw tables only.
    two = MetricQuery("tickets_created", start, NOW, by=Dimension.GROUP).with_filter(
        Dimension.CHANNEL, "email"
    )
    assert rollup_window(db, METRICS["tickets_created"], two) is None
    hourly = MetricQuery("tickets_created", start, NOW, grain=Grain.HOUR)
    assert rollup_window(db, METRICS["tickets_created"], hourly) is None
    by_account = MetricQuery("tickets_created", start, NOW, by=Dimension.ACCOUNT)
    assert rollup_window(db, METRICS["tickets_created"], by_account) is None


def test_refresh_rolls_up_new_days_and_days_touched_by_changed_tickets(db: Session) -> None:
    _loaded(db)
    query = MetricQuery("tickets_created", NOW - timedelta(days=20), NOW, by=Dimension.GROUP, grain=Grain.DAY)
    old = db.scalars(
        select(Ticket).where(
            Ticket.created_at < NOW - timedelta(days=1),
            Ticket.created_at > NOW - timedelta(days=19),
            Ticket.merged_into_id.is_(None),
            Ticket.status != "closed",
        )
    ).first()
    assert old is not None
    moved_to = make_group(db, name="Rollup movers")
    later = NOW + timedelta(days=1, hours=2)
    with clock.frozen(later):
        tickets.update_ticket(db, SYSTEM, old, {"group_id": moved_to.id})
        db.flush()
        stale = compute_series(db, METRICS["tickets_created"], query)
        raw = compute_series(db, METRICS["tickets_created"], query, use_rollups=False)
        # Before the job runs, the closed day still counts the ticket in its old group.
        assert str(moved_to.id) not in {p.key for p in stale.points}
        assert str(moved_to.id) in {p.key for p in raw.points}
        report = rollups.refresh(db, now=later)
    assert report.built_through == "2026-11-19T00:00"
    assert rollups.built_through(db) == datetime(2026, 11, 19, tzinfo=UTC)
    _assert_same(compute_series(db, METRICS["tickets_created"], query), raw)
    yesterday = db.scalar(
        select(func.sum(DailyRollup.units)).where(
            DailyRollup.metric == "tickets_created",
            DailyRollup.dimension == rollups.ALL,
            DailyRollup.day == "2026-11-18T00:00",
        )
    )
    assert yesterday == db.scalar(
        select(func.count()).where(
            Ticket.created_at >= datetime(2026, 11, 18, tzinfo=UTC),
            Ticket.created_at < datetime(2026, 11, 19, tzinfo=UTC),
            Ticket.merged_into_id.is_(None),
        )
    )


def test_sql_bins_are_the_documented_bins(db: Session) -> None:
    values = [0.0, 0.25, 0.999, 1.0, 1.5, 59.0, 3600.0, 86_399.5, 2_000_000.0]
    for value in values:
        assert db.scalar(select(log_bin(func.abs(value)))) == histogram.bin_of(value)


def test_histogram_percentiles_keep_the_bound() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 2, 7, 100, 2500):
        values = np.concatenate([rng.lognormal(7.0, 2.0, size), np.zeros(size // 10), rng.random(size // 5)])
        bins: dict[int, int] = {}
        for value in values:
            bins[histogram.bin_of(float(value))] = bins.get(histogram.bin_of(float(value)), 0) + 1
        for fraction in (0.5, 0.9):
            exact = float(np.percentile(values, fraction * 100))
            estimate = histogram.percentile(bins, fraction)
            assert estimate is not None
            assert histogram.within_bound(estimate, exact), (size, fraction, estimate, exact)
    assert histogram.percentile({}, 0.5) is None
    assert histogram.percentile({3: 1, 5: 3}, 0.5, exact_bins=True) == 5.0
    assert math.isclose(histogram.RELATIVE_ERROR, 2 ** (1 / 16) - 1)


def _rollup_rows(db: Session) -> dict[tuple[str, str, str | None, str], tuple[object, ...]]:
    rows = db.execute(
        select(
            DailyRollup.metric,
            DailyRollup.dimension,
            DailyRollup.key,
            DailyRollup.day,
            DailyRollup.week,
            DailyRollup.month,
            DailyRollup.units,
            DailyRollup.value_sum,
            DailyRollup.histogram,
        )
    )
    return {
        (metric, dimension, key, day): (
            week,
            month,
            units,
            value_sum,
            None
            if packed is None
            else sorted(tuple(map(int, pair.split(":"))) for pair in packed.split(",")),
        )
        for metric, dimension, key, day, week, month, units, value_sum, packed in rows
    }


def test_the_scan_build_equals_the_per_metric_sql_build(db: Session) -> None:
    """The one-pass numpy build writes the rows the per-metric SQL writes: same days, keys, units
    and histograms; sums equal up to the order of addition."""
    build(db)  # next replies, a reopen, a solve without reply, ratings, a contractor vendor
    load(db, 400, end=NOW, days=30, seed=13)
    # A merged-away ticket (never counts) and a follow-up (follow-up rate).
    merged, target, followed, follow_up = db.scalars(
        select(Ticket.id).where(Ticket.solved_at.is_not(None)).order_by(Ticket.id.desc()).limit(4)
    ).all()
    db.execute(update(Ticket).where(Ticket.id == merged).values(merged_into_id=target))
    db.execute(update(Ticket).where(Ticket.id == follow_up).values(follow_up_of_id=followed))
    now = NOW + timedelta(days=1)
    rollups.rebuild(db, SYSTEM, now=now, method="sql")
    by_sql = _rollup_rows(db)
    rollups.rebuild(db, SYSTEM, now=now, method="scan")
    by_scan = _rollup_rows(db)
    assert by_scan.keys() == by_sql.keys()
    for key, (week, month, units, value_sum, bins) in by_sql.items():
        mine = by_scan[key]
        assert (mine[0], mine[1], mine[2], mine[4]) == (week, month, units, bins), key
        assert mine[3] == pytest.approx(value_sum, rel=1e-12, abs=1e-9), key
    covered = {metric for metric, *_ in by_sql}
    assert covered == {d.name for d in rollups.rolled_metrics()} - {"sla_attainment_periodic_update"}
