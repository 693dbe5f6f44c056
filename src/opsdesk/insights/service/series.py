"""Metric series: one metric, optionally by a dimension, at a grain, over a period.

Every point carries its ticket count (units for per-reply metrics), the mean and, for durations
and scores, the median and p90 (``percentile_cont`` semantics: linear interpolation between the
two nearest ranks). PostgreSQL computes percentiles with ``percentile_cont``; SQLite ranks the
values with window functions inside the database and returns only the rows at the needed ranks,
so no database ever ships a period's raw values to Python.

The same filters give the tickets behind any point (:func:`tickets_behind`), so every number in
the UI links to exactly the tickets it counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Select, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from opsdesk.auth.actor import Actor
from opsdesk.auth.models import Group, User
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem
from opsdesk.insights import histogram
from opsdesk.insights.definitions import (
    DIMENSIONS,
    LOW_CARDINALITY,
    METRICS,
    MetricDefinition,
    base_from,
    dimension_applies,
    not_merged,
)
from opsdesk.insights.enums import Dimension, Grain, MetricKind, TimeBasis
from opsdesk.insights.errors import InvalidMetricQueryError, MetricUnavailableError
from opsdesk.insights.models import DailyRollup
from opsdesk.insights.service import rollups
from opsdesk.insights.sqltime import time_bucket, unindexed
from opsdesk.sla.calendars import calendar_by_id
from opsdesk.tickets.models import Account, Ticket

PERCENTILES = (0.5, 0.9)
MAX_POINTS = 5000
ID_DIMENSIONS = frozenset({Dimension.GROUP, Dimension.AGENT, Dimension.ACCOUNT})
# How a filter value says "no value" (unassigned, no category...).
NONE_KEY = "none"


@dataclass(frozen=True, slots=True)
class MetricQuery:
    metric: str
    start: datetime
    end: datetime
    by: Dimension | None = None
    grain: Grain | None = None
    filters: Mapping[Dimension, str] = field(default_factory=dict)
    time_basis: TimeBasis = TimeBasis.CALENDAR

    def with_filter(self, dimension: Dimension, value: str) -> MetricQuery:
        return MetricQuery(
            self.metric,
            self.start,
            self.end,
            self.by,
            self.grain,
            {**self.filters, dimension: value},
            self.time_basis,
        )


@dataclass(frozen=True, slots=True)
class MetricPoint:
    bucket: str | None
    key: str | None
    label: str
    count: int
    value: float | None
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    # True when p50/p90 come from rollup histograms (bound: opsdesk.insights.histogram).
    percentiles_estimated: bool = False


@dataclass(frozen=True, slots=True)
class MetricSeries:
    definition: MetricDefinition
    query: MetricQuery
    points: list[MetricPoint]

    def point(self, bucket: str | None = None, key: str | None = None) -> MetricPoint | None:
        for point in self.points:
            if point.bucket == bucket and point.key == key:
                return point
        return None


def definition_for(name: str) -> MetricDefinition:
    definition = METRICS.get(name)
    if definition is None:
        raise InvalidMetricQueryError(
            f"unknown metric {name!r}",
            fields=[FieldProblem(("query", "metric"), f"must be one of {', '.join(sorted(METRICS))}")],
        )
    return definition


def validate(query: MetricQuery) -> MetricDefinition:
    definition = definition_for(query.metric)
    problems: list[FieldProblem] = []
    if query.start.tzinfo is None or query.end.tzinfo is None:
        problems.append(FieldProblem(("query", "from"), "needs a time zone (e.g. Z)"))
    elif query.end <= query.start:
        problems.append(FieldProblem(("query", "to"), "must be after from"))
    elif query.grain is not None:
        step = {
            Grain.HOUR: timedelta(hours=1),
            Grain.DAY: timedelta(days=1),
            Grain.WEEK: timedelta(weeks=1),
            Grain.MONTH: timedelta(days=28),
        }[query.grain]
        if (query.end - query.start) / step > MAX_POINTS:
            problems.append(
                FieldProblem(("query", "grain"), f"gives more than {MAX_POINTS} points; use a coarser grain")
            )
    for dimension, value in query.filters.items():
        if dimension in ID_DIMENSIONS and value != NONE_KEY and not value.isdigit():
            problems.append(FieldProblem(("query", dimension.value), "must be an id or 'none'"))
    for dimension, name in [
        *((d, d.value) for d in query.filters),
        *([(query.by, "by")] if query.by is not None else []),
    ]:
        if not dimension_applies(definition, dimension):
            problems.append(
                FieldProblem(("query", name), f"{dimension.value} groups SLA attainment metrics only")
            )
    if problems:
        raise InvalidMetricQueryError("the metric query is not valid", fields=problems)
    if definition.unavailable is not None:
        raise MetricUnavailableError(definition.unavailable)
    if query.time_basis is TimeBasis.BUSINESS and not definition.supports_business_time:
        raise InvalidMetricQueryError(
            "the metric query is not valid",
            fields=[
                FieldProblem(
                    ("query", "basis"),
                    f"{definition.label} is measured in calendar time only; business time applies to "
                    + ", ".join(sorted(name for name, d in METRICS.items() if d.supports_business_time)),
                )
            ],
        )
    return definition


def _filter_clause(dimension: Dimension, value: str) -> ColumnElement[bool]:
    key: Any = DIMENSIONS[dimension].key
    if dimension in LOW_CARDINALITY:
        key = unindexed(key)
    clause: ColumnElement[bool]
    if value == NONE_KEY:
        clause = key.is_(None)
    elif dimension in ID_DIMENSIONS:
        clause = key == int(value)
    else:
        clause = key == value
    return clause


def _joins(query: MetricQuery) -> set[str]:
    needed: set[str] = set()
    for dimension in [*query.filters, *([query.by] if query.by else [])]:
        needed.update(DIMENSIONS[dimension].joins)
    return needed


def _where(definition: MetricDefinition, query: MetricQuery) -> list[ColumnElement[bool]]:
    return [
        definition.in_period(query.start, query.end),
        not_merged(),
        definition.population,
        *(_filter_clause(dimension, value) for dimension, value in query.filters.items()),
    ]


def _bucket(definition: MetricDefinition, query: MetricQuery) -> ColumnElement[Any]:
    if query.grain is None:
        return literal(None).label("bucket")
    return time_bucket(query.grain, definition.anchor).label("bucket")


def _key(query: MetricQuery) -> ColumnElement[Any]:
    if query.by is None:
        return literal(None).label("key")
    return DIMENSIONS[query.by].key.label("key")


def _stringify(key: Any) -> str | None:
    return None if key is None else str(key)


def metric_series(session: Session, actor: Actor, query: MetricQuery) -> MetricSeries:
    """The series of one metric; points sorted by bucket, then by count (largest first)."""
    require(actor, Permission.REPORT_READ)
    definition = validate(query)
    return compute_series(session, definition, query)


def compute_series(
    session: Session, definition: MetricDefinition, query: MetricQuery, *, use_rollups: bool = True
) -> MetricSeries:
    """:func:`metric_series` without the permission check, for callers that already checked.

    Whole UTC days the daily rollups cover are read from them when the request allows (see
    :func:`rollup_window`); the rest (today, partial days) from the raw tables.
    """
    window = rollup_window(session, definition, query) if use_rollups else None
    if window is not None:
        return _series_from_rollups(session, definition, query, window)
    bucket, key = _bucket(definition, query), _key(query)
    source = base_from(definition, _joins(query))
    where = _where(definition, query)
    rows: list[tuple[Any, Any, int, float | None, float | None, float | None]]
    if definition.kind is MetricKind.COUNT:
        statement = select(bucket, key, func.count()).select_from(source).where(*where).group_by(bucket, key)
        rows = [(b, k, n, float(n), None, None) for b, k, n in session.execute(statement)]
    elif definition.kind is MetricKind.RATE:
        assert definition.value is not None
        statement = (
            select(bucket, key, func.count(), func.avg(definition.value))
            .select_from(source)
            .where(*where)
            .group_by(bucket, key)
        )
        rows = [(b, k, n, _float(mean), None, None) for b, k, n, mean in session.execute(statement)]
    elif query.time_basis is TimeBasis.BUSINESS:
        rows = _business_percentiles(session, definition, source, where, bucket, key)
    elif session.get_bind().dialect.name == "postgresql":
        rows = _percentiles_postgresql(session, definition, query, source, where, bucket, key)
    else:
        rows = _percentiles_ranked(session, definition, source, where, bucket, key)
    return _points(session, definition, query, rows)


def _points(
    session: Session,
    definition: MetricDefinition,
    query: MetricQuery,
    rows: list[tuple[Any, Any, int, float | None, float | None, float | None]],
    *,
    estimated: bool = False,
) -> MetricSeries:
    labels = labels_for(session, query.by, {k for _, k, *_ in rows})
    points = []
    for raw_bucket, raw_key, count, mean, p50, p90 in rows:
        string_key = _stringify(raw_key)
        value = mean if definition.kind is not MetricKind.COUNT else float(count)
        points.append(
            MetricPoint(
                bucket=raw_bucket,
                key=string_key,
                label=labels.get(string_key, string_key if string_key is not None else "(none)"),
                count=int(count),
                value=value,
                mean=mean if definition.kind is not MetricKind.COUNT else None,
                p50=p50,
                p90=p90,
                percentiles_estimated=estimated and p50 is not None,
            )
        )
    points.sort(key=lambda point: (point.bucket or "", -point.count, point.label))
    return MetricSeries(definition, query, points)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _percentiles_postgresql(
    session: Session,
    definition: MetricDefinition,
    query: MetricQuery,
    source: Any,
    where: list[ColumnElement[bool]],
    bucket: ColumnElement[Any],
    key: ColumnElement[Any],
) -> list[tuple[Any, Any, int, float | None, float | None, float | None]]:
    del query
    value = definition.value
    assert value is not None
    statement = (
        select(
            bucket,
            key,
            func.count(),
            func.avg(value),
            func.percentile_cont(PERCENTILES[0]).within_group(value.asc()),
            func.percentile_cont(PERCENTILES[1]).within_group(value.asc()),
        )
        .select_from(source)
        .where(*where, value.is_not(None))
        .group_by(bucket, key)
    )
    return [
        (b, k, n, _float(mean), _float(p50), _float(p90))
        for b, k, n, mean, p50, p90 in session.execute(statement)
    ]


def _percentiles_ranked(
    session: Session,
    definition: MetricDefinition,
    source: Any,
    where: list[ColumnElement[bool]],
    bucket: ColumnElement[Any],
    key: ColumnElement[Any],
) -> list[tuple[Any, Any, int, float | None, float | None, float | None]]:
    """percentile_cont for databases without it (SQLite).

    SQLite's window functions sort row by row through a temporary B-tree, several times slower
    than the scan itself; the values are instead read unsorted (one float per unit) and grouped,
    sorted and interpolated with numpy, with exactly percentile_cont's formula.
    """
    value = definition.value
    assert value is not None
    statement = select(bucket, key, value).select_from(source).where(*where, value.is_not(None))
    return _ranked_rows(session.execute(statement))


def _business_percentiles(
    session: Session,
    definition: MetricDefinition,
    source: Any,
    where: list[ColumnElement[bool]],
    bucket: ColumnElement[Any],
    key: ColumnElement[Any],
) -> list[tuple[Any, Any, int, float | None, float | None, float | None]]:
    """Durations in business time: the business seconds between the duration's two instants on
    the default business calendar (the SLA domain's; open hours, time zone, holidays), computed
    per unit from the raw tables (rollups hold calendar time only)."""
    assert definition.business_span is not None
    calendar = calendar_by_id(session, None)
    if calendar is None:
        raise MetricUnavailableError(
            "business time needs a business calendar and none is defined: create one under SLA "
            "(/sla/calendars or POST /api/v1/sla/calendars)"
        )
    begin, finish = definition.business_span
    statement = (
        select(bucket, key, begin, finish)
        .select_from(source)
        .where(*where, begin.is_not(None), finish.is_not(None))
    )
    return _ranked_rows(
        (row_bucket, row_key, calendar.seconds_between(_epoch(started), _epoch(ended)))
        for row_bucket, row_key, started, ended in session.execute(statement)
    )


def _epoch(instant: Any) -> float:
    if isinstance(instant, str):  # a scalar subquery's instant may come back as SQLite text
        instant = datetime.fromisoformat(instant)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return float(instant.timestamp())


def _ranked_rows(
    values_by_group: Any,
) -> list[tuple[Any, Any, int, float | None, float | None, float | None]]:
    """(bucket, key, count, mean, p50, p90) from (bucket, key, value) rows, percentile_cont exact."""
    codes: dict[tuple[Any, Any], int] = {}
    group_of: list[int] = []
    observed: list[float] = []
    for row_bucket, row_key, row_value in values_by_group:
        group = (row_bucket, row_key)
        code = codes.get(group)
        if code is None:
            code = codes[group] = len(codes)
        group_of.append(code)
        observed.append(row_value)
    if not observed:
        return []
    groups = np.asarray(group_of, dtype=np.int64)
    values = np.asarray(observed, dtype=np.float64)
    order = np.lexsort((values, groups))
    groups, values = groups[order], values[order]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    ends = np.r_[starts[1:], groups.size]
    sums = np.add.reduceat(values, starts)
    by_code = {code: group for group, code in codes.items()}
    rows: list[tuple[Any, Any, int, float | None, float | None, float | None]] = []
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        total = int(end - start)
        ranked = values[start:end]
        p50, p90 = (interpolate_sorted(ranked, fraction) for fraction in PERCENTILES)
        group = by_code[int(groups[start])]
        rows.append((group[0], group[1], total, float(sums[index]) / total, p50, p90))
    return rows


def interpolate_sorted(ranked: Any, fraction: float) -> float:
    """percentile_cont over ascending values: linear between the ranks around (n - 1) * fraction."""
    position = (len(ranked) - 1) * fraction
    lower = math.floor(position)
    low_value = float(ranked[lower])
    if lower + 1 >= len(ranked):
        return low_value
    return low_value + (position - lower) * (float(ranked[lower + 1]) - low_value)


def labels_for(session: Session, by: Dimension | None, keys: set[Any]) -> dict[str | None, str]:
    """Names for id dimensions (one query for all keys); other keys are their own label."""
    present = [key for key in keys if key is not None]
    if by is None or by not in ID_DIMENSIONS or not present:
        if by is Dimension.VENDOR:
            return {None: "(unassigned)"}
        return {}
    model: Any = {Dimension.GROUP: Group, Dimension.AGENT: User, Dimension.ACCOUNT: Account}[by]
    ids = sorted({int(key) for key in present})
    names = session.execute(select(model.id, model.name).where(model.id.in_(ids)))
    labels: dict[str | None, str] = {str(row_id): name for row_id, name in names}
    labels[None] = {Dimension.GROUP: "(no group)", Dimension.AGENT: "(unassigned)"}.get(by, "(none)")
    return labels


def tickets_behind_statement(
    definition: MetricDefinition, query: MetricQuery, bucket: str | None = None, key: str | None = None
) -> Select[Any]:
    """The ids of the tickets behind one point of a series (or the whole series)."""
    where = _where(definition, query)
    if bucket is not None and query.grain is not None:
        where.append(time_bucket(query.grain, definition.anchor) == bucket)
    if query.by is not None and key is not None:
        where.append(_filter_clause(query.by, key))
    statement = select(Ticket.id).select_from(base_from(definition, _joins(query))).where(*where)
    if definition.value is not None and definition.kind is not MetricKind.RATE:
        statement = statement.where(definition.value.is_not(None))
    return statement.distinct()


def tickets_behind(
    session: Session,
    actor: Actor,
    query: MetricQuery,
    *,
    bucket: str | None = None,
    key: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> tuple[int, list[Ticket]]:
    """(how many tickets, one page of them newest first) behind a point of a series."""
    require(actor, Permission.REPORT_READ)
    definition = validate(query)
    if query.by in ID_DIMENSIONS and key is not None and key != NONE_KEY and not key.isdigit():
        raise InvalidMetricQueryError(
            "the metric query is not valid",
            fields=[FieldProblem(("query", "key"), "must be an id or 'none'")],
        )
    ids = tickets_behind_statement(definition, query, bucket, key).subquery()
    total = session.scalar(select(func.count()).select_from(ids)) or 0
    page = list(
        session.scalars(
            select(Ticket)
            .where(Ticket.id.in_(select(ids.c.id)))
            .order_by(Ticket.id.desc())
            .limit(limit)
            .offset(offset)
        ).unique()
    )
    return total, page


SERIES_HEADER = ("bucket", "key", "label", "tickets", "value", "mean", "p50", "p90")
TICKET_HEADER = (
    "id",
    "subject",
    "status",
    "priority",
    "channel",
    "category",
    "group_id",
    "assignee_id",
    "account_id",
    "created_at",
    "first_reply_at",
    "solved_at",
    "reopened_count",
    "staff_public_reply_count",
    "handle_seconds",
    "satisfaction_score",
)


def series_table(series: MetricSeries) -> list[tuple[Any, ...]]:
    """The rows of a series as exported (CSV, XLSX), in :data:`SERIES_HEADER` order."""
    return [
        (point.bucket, point.key, point.label, point.count, point.value, point.mean, point.p50, point.p90)
        for point in series.points
    ]


def ticket_table(tickets: list[Ticket]) -> list[tuple[Any, ...]]:
    return [
        (
            ticket.id,
            ticket.subject,
            ticket.status,
            ticket.priority,
            ticket.channel,
            ticket.category,
            ticket.group_id,
            ticket.assignee_id,
            ticket.account_id,
            ticket.created_at,
            ticket.first_reply_at,
            ticket.solved_at,
            ticket.reopened_count,
            ticket.staff_public_reply_count,
            ticket.handle_seconds,
            ticket.satisfaction_score,
        )
        for ticket in tickets
    ]


# --- answering from the daily rollups -------------------------------------------------------

_ROLLUP_GRAINS = {None: None, Grain.DAY: "day", Grain.WEEK: "week", Grain.MONTH: "month"}


def rollup_window(
    session: Session, definition: MetricDefinition, query: MetricQuery
) -> tuple[datetime, datetime] | None:
    """The whole UTC days of the request the rollups can answer, or None (raw tables only).

    Rollups answer calendar-time metrics at day, week or month grain (or none), grouped by one
    rolled-up dimension and/or filtered on that same dimension; anything finer (an hour grain,
    two filters, by account) reads the raw tables.
    """
    if definition.name not in {rolled.name for rolled in rollups.rolled_metrics()}:
        return None
    if query.grain not in _ROLLUP_GRAINS or query.time_basis is not TimeBasis.CALENDAR:
        return None
    dimensions = {*query.filters, *([query.by] if query.by is not None else [])}
    if len(dimensions) > 1 or any(d not in rollups.ROLLED_DIMENSIONS for d in dimensions):
        return None
    built = rollups.built_through(session)
    if built is None:
        return None
    first = query.start.astimezone(UTC)
    lower = datetime(first.year, first.month, first.day, tzinfo=UTC)
    if lower < first:
        lower += timedelta(days=1)
    last = query.end.astimezone(UTC)
    upper = min(datetime(last.year, last.month, last.day, tzinfo=UTC), built)
    if upper <= lower:
        return None
    return lower, upper


@dataclass(slots=True)
class _Cell:
    count: int = 0
    total: float = 0.0
    bins: dict[int, int] = field(default_factory=dict)

    def add(self, bin_number: int, units: int, total: float) -> None:
        self.count += units
        self.total += total
        self.bins[bin_number] = self.bins.get(bin_number, 0) + units


def _series_from_rollups(
    session: Session, definition: MetricDefinition, query: MetricQuery, window: tuple[datetime, datetime]
) -> MetricSeries:
    lower, upper = window
    cells: dict[tuple[Any, Any], _Cell] = {}

    def cell(bucket: Any, key: Any) -> _Cell:
        found = cells.get((bucket, key))
        if found is None:
            found = cells[(bucket, key)] = _Cell()
        return found

    grain_column = _ROLLUP_GRAINS[query.grain]
    bucket_column: Any = literal(None) if grain_column is None else getattr(DailyRollup, grain_column)
    dimension = next(iter({*query.filters, *([query.by] if query.by is not None else [])}), None)
    where: list[ColumnElement[bool]] = [
        DailyRollup.metric == definition.name,
        DailyRollup.dimension == (rollups.ALL if dimension is None else dimension.value),
        DailyRollup.day >= rollups.day_text(lower.date()),
        DailyRollup.day < rollups.day_text(upper.date()),
    ]
    for filtered, value in query.filters.items():
        if value == NONE_KEY:
            where.append(DailyRollup.key.is_(None))
        else:
            where.append(DailyRollup.key == (str(int(value)) if filtered in ID_DIMENSIONS else value))
    key_column: Any = DailyRollup.key if query.by is not None else literal(None)
    if definition.has_percentiles:
        # Histograms are merged here: read each day's row (a few thousand at most).
        statement = select(
            bucket_column, key_column, DailyRollup.units, DailyRollup.value_sum, DailyRollup.histogram
        ).where(*where)
        for bucket, key, units, total, packed in session.execute(statement):
            target = cell(bucket, key)
            target.count += int(units)
            target.total += float(total or 0.0)
            for pair in (packed or "").split(","):
                if pair:
                    bin_text, _, bin_units = pair.partition(":")
                    bin_number = int(bin_text)
                    target.bins[bin_number] = target.bins.get(bin_number, 0) + int(bin_units)
    else:
        grouping: list[Any] = []
        if grain_column is not None:
            grouping.append(bucket_column)
        if query.by is not None:
            grouping.append(key_column)
        summed = (
            select(bucket_column, key_column, func.sum(DailyRollup.units), func.sum(DailyRollup.value_sum))
            .where(*where)
            .group_by(*grouping)
        )
        for bucket, key, units, total in session.execute(summed):
            if units is None:  # no rollup rows: an aggregate without GROUP BY still answers
                continue
            target = cell(bucket, key)
            target.count += int(units)
            target.total += float(total or 0.0)
    for edge_start, edge_end in ((query.start, lower), (upper, query.end)):
        if edge_end > edge_start:
            edge = replace(query, start=edge_start, end=edge_end)
            for bucket, key, bin_number, units, total in _raw_histogram(session, definition, edge):
                cell(bucket, _stringify(key)).add(int(bin_number), int(units), float(total or 0.0))
    rows: list[tuple[Any, Any, int, float | None, float | None, float | None]] = []
    exact = definition.kind is MetricKind.SCORE
    for (bucket, key), found in cells.items():
        if found.count == 0:
            continue
        mean = found.total / found.count
        p50 = p90 = None
        if definition.has_percentiles:
            p50 = histogram.percentile(found.bins, PERCENTILES[0], exact_bins=exact)
            p90 = histogram.percentile(found.bins, PERCENTILES[1], exact_bins=exact)
        rows.append((bucket, key, found.count, mean, p50, p90))
    return _points(session, definition, query, rows, estimated=not exact)


def raw_histogram_statement(definition: MetricDefinition, query: MetricQuery) -> Any:
    """(bucket, key, bin, units, sum) from the raw tables, binned as the rollups bin.

    The units are a materialized CTE: the value's expression (correlated subqueries for requester
    wait, periodic update, next reply) is evaluated once per unit. Inlined, PostgreSQL repeated
    it for every mention (the null filter, each branch of the bin, the sum, the GROUP BY)."""
    value = rollups.value_of(definition)
    inner = (
        select(_bucket(definition, query), _key(query), value.label("value"))
        .select_from(base_from(definition, _joins(query)))
        .where(*_where(definition, query))
        .cte("units")
        .prefix_with("MATERIALIZED")
    )
    bin_expression = rollups.bin_of(definition, inner.c.value)
    statement = select(inner.c.bucket, inner.c.key, bin_expression, func.count(), func.sum(inner.c.value))
    if definition.kind in (MetricKind.DURATION, MetricKind.SCORE):
        statement = statement.where(inner.c.value.is_not(None))
    return statement.group_by(inner.c.bucket, inner.c.key, bin_expression)


def _raw_histogram(session: Session, definition: MetricDefinition, query: MetricQuery) -> Any:
    return session.execute(raw_histogram_statement(definition, query))
