"""The weekly ops review: one ISO week against the week before, from the metric layer only.

Sections: headline figures with week-over-week deltas; volume and its 8-week trend by channel;
volume by category; first reply and resolution times (mean, p50, p90); CSAT, FCR, reopen and
follow-up rates; backlog health at the end of the week by age; top drivers (categories and
accounts by volume and by time spent); contractor vendors against in-house staff; and a short
generated "what changed" summary. Every figure carries its ticket count and a drill-down link.
SLA attainment (overall and per SLA metric: first reply, next reply, periodic update, resolution)
comes from the SLA domain's targets; cost to serve from :mod:`opsdesk.insights.service.cost`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem
from opsdesk.insights.charts import format_duration, format_share
from opsdesk.insights.definitions import METRICS, not_merged
from opsdesk.insights.enums import Dimension, Grain, MetricKind
from opsdesk.insights.errors import InvalidMetricQueryError
from opsdesk.insights.links import drilldown_url
from opsdesk.insights.service.series import MetricPoint, MetricQuery, compute_series
from opsdesk.insights.sqltime import unindexed
from opsdesk.tickets.models import Ticket

HEADLINE_METRICS = (
    "tickets_created",
    "tickets_solved",
    "first_reply_time",
    "full_resolution_time",
    "handle_time",
    "csat",
    "first_contact_resolution",
    "reopen_rate",
    "follow_up_rate",
    "solved_without_reply",
)
SLA_METRICS = tuple(name for name in METRICS if name.startswith("sla_attainment"))
VENDOR_METRICS = ("tickets_solved", "first_reply_time", "handle_time", "csat", "first_contact_resolution")
AGE_BUCKETS: tuple[tuple[str, timedelta | None], ...] = (
    ("under 1 day", timedelta(days=1)),
    ("1-3 days", timedelta(days=3)),
    ("3-7 days", timedelta(days=7)),
    ("7-30 days", timedelta(days=30)),
    ("over 30 days", None),
)
TREND_WEEKS = 8
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True, slots=True)
class Figure:
    metric: str
    label: str
    kind: str
    count: int
    value: float | None
    p50: float | None
    p90: float | None
    previous_value: float | None
    previous_count: int
    href: str
    unavailable: str | None = None

    @property
    def change(self) -> float | None:
        """Relative change for counts and durations, absolute (points) for rates."""
        if self.value is None or self.previous_value is None:
            return None
        if self.kind == MetricKind.RATE:
            return self.value - self.previous_value
        if self.previous_value == 0:
            return None
        return (self.value - self.previous_value) / self.previous_value

    def shown(self, value: float | None) -> str:
        if value is None:
            return "-"
        if self.kind == MetricKind.DURATION:
            return format_duration(value)
        if self.kind == MetricKind.RATE:
            return format_share(value)
        if self.kind == MetricKind.SCORE:
            return f"{value:.2f}"
        return f"{value:,.0f}"

    @property
    def change_text(self) -> str:
        change = self.change
        if change is None:
            return "-"
        if self.kind == MetricKind.RATE:
            return f"{change * 100:+.1f} pts"
        return f"{change * 100:+.0f} %"


@dataclass(frozen=True, slots=True)
class Row:
    """A row of a breakdown table: this week against last week, with a link."""

    key: str | None
    label: str
    count: int
    previous_count: int
    value: float | None = None
    href: str = ""


@dataclass(slots=True)
class WeeklyReview:
    week: str
    start: datetime
    end: datetime
    previous_start: datetime
    generated_at: datetime
    headline: list[Figure] = field(default_factory=list)
    volume_trend: list[tuple[str, int]] = field(default_factory=list)
    channel_trend: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    by_channel: list[Row] = field(default_factory=list)
    by_category: list[Row] = field(default_factory=list)
    backlog: list[Row] = field(default_factory=list)
    backlog_total: int = 0
    drivers_category_volume: list[Row] = field(default_factory=list)
    drivers_category_time: list[Row] = field(default_factory=list)
    drivers_account_volume: list[Row] = field(default_factory=list)
    drivers_account_time: list[Row] = field(default_factory=list)
    vendors: list[dict[str, Figure]] = field(default_factory=list)
    vendor_labels: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    def figure(self, metric: str) -> Figure:
        return next(figure for figure in self.headline if figure.metric == metric)


def parse_week(text: str) -> tuple[datetime, str]:
    """``2026-W46`` -> (Monday 00:00 UTC of that ISO week, the label)."""
    match = _WEEK.match(text.strip())
    if match is None:
        raise InvalidMetricQueryError(
            f"{text!r} is not an ISO week", fields=[FieldProblem(("week",), "use the form 2026-W46")]
        )
    year, number = int(match.group(1)), int(match.group(2))
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError as error:
        raise InvalidMetricQueryError(
            f"{text!r} is not an ISO week", fields=[FieldProblem(("week",), str(error))]
        ) from error
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC), f"{year}-W{number:02d}"


def last_complete_week(now: datetime | None = None) -> str:
    today = (now or clock.now()).date()
    previous = today - timedelta(days=7)
    year, week, _ = previous.isocalendar()
    return f"{year}-W{week:02d}"


def _week_label(bucket: str) -> str:
    year, week, _ = date.fromisoformat(bucket[:10]).isocalendar()
    return f"{year}-W{week:02d}"


def weekly_review(session: Session, actor: Actor, week: str | None = None) -> WeeklyReview:
    require(actor, Permission.REPORT_READ)
    start, label = parse_week(week or last_complete_week())
    end, previous_start = start + timedelta(days=7), start - timedelta(days=7)
    review = WeeklyReview(label, start, end, previous_start, clock.now())
    this_bucket, last_bucket = start.strftime("%Y-%m-%dT00:00"), previous_start.strftime("%Y-%m-%dT00:00")

    def two_weeks(
        metric: str, by: Dimension | None = None
    ) -> tuple[dict[str | None, MetricPoint], dict[str | None, MetricPoint]]:
        series = compute_series(
            session, METRICS[metric], MetricQuery(metric, previous_start, end, by=by, grain=Grain.WEEK)
        )
        current = {point.key: point for point in series.points if point.bucket == this_bucket}
        previous = {point.key: point for point in series.points if point.bucket == last_bucket}
        return current, previous

    for metric in (*HEADLINE_METRICS, *SLA_METRICS):
        definition = METRICS[metric]
        href = drilldown_url(metric, start, end)
        if definition.unavailable is not None:
            review.headline.append(
                Figure(
                    metric,
                    definition.label,
                    definition.kind,
                    0,
                    None,
                    None,
                    None,
                    None,
                    0,
                    href,
                    definition.unavailable,
                )
            )
            continue
        current, previous = two_weeks(metric)
        now_point, then_point = current.get(None), previous.get(None)
        review.headline.append(
            Figure(
                metric,
                definition.label,
                definition.kind,
                now_point.count if now_point else 0,
                now_point.value if now_point else None,
                now_point.p50 if now_point else None,
                now_point.p90 if now_point else None,
                then_point.value if then_point else None,
                then_point.count if then_point else 0,
                href,
            )
        )

    trend_start = start - timedelta(weeks=TREND_WEEKS - 1)
    trend = compute_series(
        session,
        METRICS["tickets_created"],
        MetricQuery("tickets_created", trend_start, end, by=Dimension.CHANNEL, grain=Grain.WEEK),
    )
    totals: dict[str, int] = {}
    for point in trend.points:
        assert point.bucket is not None
        week_label = _week_label(point.bucket)
        totals[week_label] = totals.get(week_label, 0) + point.count
        review.channel_trend.setdefault(point.label, []).append((week_label, point.count))
    review.volume_trend = sorted(totals.items())

    for dimension, target in (
        (Dimension.CHANNEL, review.by_channel),
        (Dimension.CATEGORY, review.by_category),
    ):
        current, previous = two_weeks("tickets_created", dimension)
        for key in sorted(
            set(current) | set(previous), key=lambda k: (-(current[k].count if k in current else 0), str(k))
        ):
            point = current[key] if key in current else previous[key]
            target.append(
                Row(
                    key,
                    point.label,
                    current[key].count if key in current else 0,
                    previous[key].count if key in previous else 0,
                    href=drilldown_url("tickets_created", start, end, by=dimension.value, key=key),
                )
            )

    _backlog(session, review)
    _drivers(session, review)

    vendor_points: dict[str | None, dict[str, Figure]] = {}
    for metric in VENDOR_METRICS:
        definition = METRICS[metric]
        current, previous = two_weeks(metric, Dimension.VENDOR)
        for key in set(current) | set(previous):
            vendor_point, before = current.get(key), previous.get(key)
            vendor_points.setdefault(key, {})[metric] = Figure(
                metric,
                definition.label,
                definition.kind,
                vendor_point.count if vendor_point else 0,
                vendor_point.value if vendor_point else None,
                vendor_point.p50 if vendor_point else None,
                vendor_point.p90 if vendor_point else None,
                before.value if before else None,
                before.count if before else 0,
                drilldown_url(metric, start, end, by="vendor", key=key),
            )
    for key in sorted(vendor_points, key=lambda k: (k != "in-house", k is None, k or "")):
        review.vendor_labels.append(key if key is not None else "(unassigned)")
        review.vendors.append(vendor_points[key])
    review.summary = summarize(review)
    return review


def _backlog(session: Session, review: WeeklyReview) -> None:
    """Unsolved at the end of the week, by age: created before it and not yet (first) solved."""
    instant = review.end
    conditions = []
    for name, limit in AGE_BUCKETS:
        if limit is not None:
            conditions.append((Ticket.created_at > instant - limit, name))
    age = case(*conditions, else_=AGE_BUCKETS[-1][0])
    # Two index-driven halves instead of one OR: never solved (few: today's backlog) and first
    # solved after the instant (a few days' solves); neither walks the whole ticket history.
    counts: dict[str, int] = {}
    for unsolved_then in (Ticket.first_solved_at.is_(None), Ticket.first_solved_at >= instant):
        statement = (
            select(age, func.count())
            .where(unindexed(Ticket.created_at) < instant, unsolved_then, not_merged())
            .group_by(age)
        )
        for name, total in session.execute(statement):
            counts[str(name)] = counts.get(str(name), 0) + int(total)
    for name, _limit in AGE_BUCKETS:
        review.backlog.append(Row(name, name, int(counts.get(name, 0)), 0))
    review.backlog_total = sum(row.count for row in review.backlog)


def _drivers(session: Session, review: WeeklyReview) -> None:
    """Top categories and accounts by tickets created and by handle time of solved tickets."""
    start, end = review.start, review.end
    for dimension, by_volume, by_time in (
        (Dimension.CATEGORY, review.drivers_category_volume, review.drivers_category_time),
        (Dimension.ACCOUNT, review.drivers_account_volume, review.drivers_account_time),
    ):
        volume = compute_series(
            session, METRICS["tickets_created"], MetricQuery("tickets_created", start, end, by=dimension)
        )
        for point in sorted(volume.points, key=lambda p: -p.count)[:10]:
            by_volume.append(
                Row(
                    point.key,
                    point.label,
                    point.count,
                    0,
                    float(point.count),
                    drilldown_url("tickets_created", start, end, by=dimension.value, key=point.key),
                )
            )
        handled = compute_series(
            session, METRICS["handle_time"], MetricQuery("handle_time", start, end, by=dimension)
        )
        ranked = sorted(handled.points, key=lambda p: -((p.mean or 0) * p.count))[:10]
        for point in ranked:
            by_time.append(
                Row(
                    point.key,
                    point.label,
                    point.count,
                    0,
                    (point.mean or 0) * point.count / 3600,
                    drilldown_url("handle_time", start, end, by=dimension.value, key=point.key),
                )
            )


def summarize(review: WeeklyReview) -> list[str]:
    """A few plain sentences on what changed, biggest movements first."""
    sentences: list[str] = []
    created = review.figure("tickets_created")
    if created.previous_count:
        change = (created.count - created.previous_count) / created.previous_count
        direction = "rose" if change > 0 else "fell" if change < 0 else "held"
        sentences.append(
            f"Volume {direction} {abs(change) * 100:.0f} % to {created.count:,} tickets "
            f"(from {created.previous_count:,})."
        )
    else:
        sentences.append(f"{created.count:,} tickets were created.")
    movers = sorted(
        (row for row in review.by_category if row.previous_count or row.count),
        key=lambda row: -abs(row.count - row.previous_count),
    )
    if movers and movers[0].count != movers[0].previous_count:
        top = movers[0]
        sentences.append(
            f"{top.label} moved most: {top.count - top.previous_count:+,} tickets "
            f"({top.previous_count:,} to {top.count:,})."
        )
    for metric, better_when_lower in (("first_reply_time", True), ("full_resolution_time", True)):
        figure = review.figure(metric)
        if figure.p50 is None:
            continue
        previous = figure.previous_value
        if previous is None:
            continue
        relative = figure.change or 0.0
        if abs(relative) >= 0.05:
            improved = (relative < 0) == better_when_lower
            sentences.append(
                f"{figure.label} {'improved' if improved else 'worsened'}: mean {figure.shown(figure.value)} "
                f"({figure.change_text}), median {figure.shown(figure.p50)}."
            )
    for metric in ("csat", "first_contact_resolution", "reopen_rate"):
        figure = review.figure(metric)
        points = figure.change
        if points is not None and abs(points) >= 0.02:
            sentences.append(
                f"{figure.label} {'rose' if points > 0 else 'fell'} {abs(points) * 100:.1f} points to "
                f"{figure.shown(figure.value)} ({figure.count:,} tickets)."
            )
    if review.backlog_total:
        old = sum(row.count for row in review.backlog[3:])
        sentences.append(
            f"Backlog at week end: {review.backlog_total:,} unsolved, {old:,} older than 7 days."
        )
    return sentences
