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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Select, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from opsdesk.auth.actor import Actor
from opsdesk.auth.models import Group, User
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem
from opsdesk.insights.definitions import (
    DIMENSIONS,
    LOW_CARDINALITY,
    METRICS,
    MetricDefinition,
    base_from,
    not_merged,
)
from opsdesk.insights.enums import Dimension, Grain, MetricKind, TimeBasis
from opsdesk.insights.errors import InvalidMetricQueryError, MetricUnavailableError
from opsdesk.insights.sqltime import time_bucket, unindexed
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
    if problems:
        raise InvalidMetricQueryError("the metric query is not valid", fields=problems)
    if definition.unavailable is not None:
        raise MetricUnavailableError(definition.unavailable)
    if query.time_basis is TimeBasis.BUSINESS:
        raise MetricUnavailableError(
            "business time needs a business calendar (SLA domain), not installed yet"
            if definition.supports_business_time
            else f"{definition.label} is measured in calendar time only"
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
        definition.anchor >= query.start,
        definition.anchor < query.end,
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


def compute_series(session: Session, definition: MetricDefinition, query: MetricQuery) -> MetricSeries:
    """:func:`metric_series` without the permission check, for callers that already checked."""
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
    elif session.get_bind().dialect.name == "postgresql":
        rows = _percentiles_postgresql(session, definition, query, source, where, bucket, key)
    else:
        rows = _percentiles_ranked(session, definition, source, where, bucket, key)
    labels = _labels(session, query.by, {k for _, k, *_ in rows})
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
    codes: dict[tuple[Any, Any], int] = {}
    group_of: list[int] = []
    observed: list[float] = []
    for row_bucket, row_key, row_value in session.execute(statement):
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


def _labels(session: Session, by: Dimension | None, keys: set[Any]) -> dict[str | None, str]:
    """Names for id dimensions (one query for all keys); other keys are their own label."""
    present = [key for key in keys if key is not None]
    if by is None or by not in ID_DIMENSIONS or not present:
        if by is Dimension.VENDOR:
            return {None: "(unassigned)"}
        return {}
    model: Any = {Dimension.GROUP: Group, Dimension.AGENT: User, Dimension.ACCOUNT: Account}[by]
    names = session.execute(select(model.id, model.name).where(model.id.in_(present)))
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
