"""Daily rollups: every metric pre-aggregated per UTC day, per dimension key, per histogram bin.

Why: a 90-day series or a weekly review over a million tickets should read a few thousand
pre-summed rows, not re-derive every ticket's durations from messages and the status trail.

What a rollup row holds (:class:`opsdesk.insights.models.DailyRollup`): the units of one metric
anchored on one day, for one value of one dimension (or ``all``): their count, the exact sum of
their values, and for durations and scores their histogram (``bin:units`` pairs). Counts, rates
and means read from rollups are therefore *equal* to the raw answers; p50/p90 of durations come
from the bins within the bound documented in :mod:`opsdesk.insights.histogram` (scores are exact).

A build of every day (:func:`rebuild`, the first scheduled build) reads each source table once
and computes all metrics and dimensions in numpy (:mod:`opsdesk.insights.service.rollup_build`).
A build of a few days (the incremental refresh) is set-based SQL: for each metric one
``INSERT ... SELECT`` computes every unit's day, value, bin and dimension keys into a temporary
table (the expensive value expressions run once), then one ``INSERT ... SELECT ... GROUP BY``
per dimension sums it into the rollup table (per bin, then the bins joined into one histogram
per day and key). Both write the same rows (tested).

Kept fresh by :func:`refresh` (hourly job): closed days not yet rolled up are added, and every
day a ticket changed since the last run could have counted in (its anchors, the days of its
audit events and messages; every anchor instant is one of those) is rolled up again. Today is
never rolled up: the series reads the partial day (and any part of a request that does not
cover whole rolled-up days) live from the raw tables with the same definitions.

Not followed between runs (until the next ``opsdesk insights rollup --rebuild``): an account's
tier or plan, or an agent's vendor, changing later; rollups keep the value they had when the
day was rolled up, while raw queries use today's. The account dimension is not rolled up at
all (nearly one row per ticket); by-account questions answer from the raw tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    tuple_,
    union,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import AuditEvent
from opsdesk.auth.permissions import Permission, require
from opsdesk.db import Database
from opsdesk.insights.definitions import DIMENSIONS, METRICS, MetricDefinition, base_from, not_merged
from opsdesk.insights.enums import Dimension, Grain, MetricKind
from opsdesk.insights.models import DailyRollup, RollupState
from opsdesk.insights.service import rollup_build
from opsdesk.insights.sqltime import concat_agg, log_bin, time_bucket
from opsdesk.tickets.models import Message, Ticket

ALL = "all"
# Not rolled up: account (nearly one row per ticket) and SLA policy (SLA attainment only).
ROLLED_DIMENSIONS: tuple[Dimension, ...] = tuple(
    d for d in Dimension if d not in (Dimension.ACCOUNT, Dimension.SLA_POLICY)
)
STATE_ID = 1
BuildMethod = Literal["scan", "sql"]
_ID_DIMENSIONS = frozenset({Dimension.GROUP, Dimension.AGENT, Dimension.ACCOUNT})

_scratch = MetaData()
units_table = Table(
    "insights_rollup_units",
    _scratch,
    Column("day", String(16)),
    Column("week", String(16)),
    Column("month", String(16)),
    Column("value", Float),
    Column("bin", Integer),
    *(Column(f"key_{dimension.value}", String(200)) for dimension in ROLLED_DIMENSIONS),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True, slots=True)
class RollupReport:
    built_through: str
    days_rebuilt: int
    rows: int
    metrics: int


def rolled_metrics() -> list[MetricDefinition]:
    """The metrics rollups hold: every metric whose source tables exist."""
    return [definition for definition in METRICS.values() if definition.unavailable is None]


def day_text(day: date) -> str:
    return f"{day.isoformat()}T00:00"


def day_start(text: str) -> datetime:
    return datetime.fromisoformat(text[:10]).replace(tzinfo=UTC)


def _key_text(dimension: Dimension) -> ColumnElement[Any]:
    key: Any = DIMENSIONS[dimension].key
    if dimension in _ID_DIMENSIONS:
        key = cast(key, String)
    return key  # type: ignore[no-any-return]


def value_of(definition: MetricDefinition) -> ColumnElement[Any]:
    if definition.kind is MetricKind.COUNT or definition.value is None:
        return literal(1.0, Float)
    return definition.value


def bin_of(definition: MetricDefinition, value: Any) -> ColumnElement[Any]:
    if definition.kind is MetricKind.DURATION:
        return log_bin(value)
    if definition.kind is MetricKind.SCORE:
        return cast(value, Integer)
    return literal(0, Integer)


def key_columns() -> dict[Dimension, ColumnElement[Any]]:
    """Each rolled dimension's key as the text the rollup table stores."""
    return {dimension: _key_text(dimension) for dimension in ROLLED_DIMENSIONS}


def _build(session: Session, start: datetime | None, end: datetime, *, method: BuildMethod = "scan") -> int:
    """Roll up every metric's units anchored in ``[start, end)`` (whole UTC days), replacing
    what the rollup table held for those days. Returns the rows written.

    ``scan``, for a build of every day (``start`` None): one ordered scan per source table into
    numpy (:mod:`opsdesk.insights.service.rollup_build`); the metrics it does not compute, and
    any partial range, go through the per-metric SQL (``sql``)."""
    day_filter = [DailyRollup.day < day_text(end.date())]
    if start is not None:
        day_filter.append(DailyRollup.day >= day_text(start.date()))
    session.execute(delete(DailyRollup).where(*day_filter))
    definitions = rolled_metrics()
    written = 0
    if method == "scan" and start is None:
        rows, definitions = rollup_build.build(session, definitions, key_columns(), ALL, end)
        written += rollup_build.write(session, rows)
    if definitions:
        written += _build_sql(session, start, end, definitions)
    return written


def _build_sql(
    session: Session, start: datetime | None, end: datetime, definitions: list[MetricDefinition]
) -> int:
    """The set-based SQL build of the given metrics (the caller cleared their days)."""
    connection = session.connection()
    units_table.drop(connection, checkfirst=True)
    units_table.create(connection)
    written = 0
    try:
        for definition in definitions:
            session.execute(delete(units_table))
            value = value_of(definition)
            where = [definition.in_period(start, end), not_merged(), definition.population]
            source = base_from(definition, {"assignee", "account"})
            # The value's expression (correlated subqueries for requester wait, periodic update,
            # next reply) is evaluated once per unit, into the temporary table.
            unit_rows = (
                select(
                    time_bucket(Grain.DAY, definition.anchor).label("day"),
                    time_bucket(Grain.WEEK, definition.anchor).label("week"),
                    time_bucket(Grain.MONTH, definition.anchor).label("month"),
                    value.label("value"),
                    *(_key_text(d).label(f"key_{d.value}") for d in ROLLED_DIMENSIONS),
                )
                .select_from(source)
                .where(*where)
                .subquery()
            )
            session.execute(
                insert(units_table).from_select(
                    [column.name for column in units_table.columns],
                    select(
                        unit_rows.c.day,
                        unit_rows.c.week,
                        unit_rows.c.month,
                        unit_rows.c.value,
                        literal(0, Integer),
                        *(unit_rows.c[f"key_{d.value}"] for d in ROLLED_DIMENSIONS),
                    ),
                )
            )
            units = units_table.c
            binned = definition.kind in (MetricKind.DURATION, MetricKind.SCORE)
            if binned:
                # Units without a value do not count (as in the raw series). Dropped here rather
                # than in the WHERE above, which would evaluate the value expression twice.
                session.execute(delete(units_table).where(units.value.is_(None)))
                # Binned from the stored value: in the INSERT the bin expression would repeat the
                # value's expression (its correlated subqueries) once per mention.
                session.execute(update(units_table).values(bin=bin_of(definition, units.value)))
            if session.get_bind().dialect.name == "postgresql":
                # One pass for every dimension: GROUPING SETS (hash aggregation).
                result = session.execute(
                    insert(DailyRollup).from_select(_ROLLUP_COLUMNS, _grouping_sets_rows(definition, binned))
                )
                written += max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
                continue
            for dimension in (None, *ROLLED_DIMENSIONS):
                key: Any = cast(null(), String) if dimension is None else units[f"key_{dimension.value}"]
                keys: list[Any] = [] if dimension is None else [key]
                if binned:
                    statement = _binned_rows(definition, dimension, key, keys)
                else:
                    statement = select(
                        literal(definition.name, String),
                        literal(ALL if dimension is None else dimension.value, String),
                        key,
                        units.day,
                        func.min(units.week),
                        func.min(units.month),
                        func.count(),
                        func.sum(units.value),
                        cast(null(), Text),
                    ).group_by(units.day, *keys)
                result = session.execute(insert(DailyRollup).from_select(_ROLLUP_COLUMNS, statement))
                written += max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
    finally:
        units_table.drop(connection, checkfirst=True)
    return written


_ROLLUP_COLUMNS = ["metric", "dimension", "key", "day", "week", "month", "units", "value_sum", "histogram"]


def _binned_rows(definition: MetricDefinition, dimension: Dimension | None, key: Any, keys: list[Any]) -> Any:
    """One row per (day, key) with its histogram: first per bin, then the bins joined.
    week and month follow from the day: carried with min(), never sorted on."""
    units = units_table.c
    per_bin = (
        select(
            units.day,
            func.min(units.week).label("week"),
            func.min(units.month).label("month"),
            key.label("key"),
            units.bin,
            func.count().label("units"),
            func.sum(units.value).label("value_sum"),
        )
        .group_by(units.day, *keys, units.bin)
        .subquery()
    )
    return select(
        literal(definition.name, String),
        literal(ALL if dimension is None else dimension.value, String),
        cast(null(), String) if dimension is None else per_bin.c.key,
        per_bin.c.day,
        func.min(per_bin.c.week),
        func.min(per_bin.c.month),
        func.sum(per_bin.c.units),
        func.sum(per_bin.c.value_sum),
        concat_agg(cast(per_bin.c.bin, String) + ":" + cast(per_bin.c.units, String)),
    ).group_by(per_bin.c.day, *([per_bin.c.key] if dimension is not None else []))


def _grouping_sets_rows(definition: MetricDefinition, binned: bool) -> Any:
    """PostgreSQL: the rows of every dimension from one scan of the units, GROUPING SETS per
    (day, bin) and each dimension's key; GROUPING() tells which dimension a row belongs to."""
    units = units_table.c
    key_columns = [units[f"key_{dimension.value}"] for dimension in ROLLED_DIMENSIONS]
    sets = [tuple_(units.day, units.bin)] + [tuple_(units.day, units.bin, column) for column in key_columns]
    which = case(
        *[
            (func.grouping(column) == 0, literal(dimension.value, String))
            for dimension, column in zip(ROLLED_DIMENSIONS, key_columns, strict=True)
        ],
        else_=literal(ALL, String),
    )
    key = case(
        *[(func.grouping(column) == 0, column) for column in key_columns],
        else_=cast(null(), String),
    )
    per_bin = (
        select(
            which.label("dimension"),
            key.label("key"),
            units.day,
            func.min(units.week).label("week"),
            func.min(units.month).label("month"),
            units.bin,
            func.count().label("units"),
            func.sum(units.value).label("value_sum"),
        )
        .group_by(func.grouping_sets(*sets))
        .subquery()
    )
    histogram: Any = (
        concat_agg(cast(per_bin.c.bin, String) + ":" + cast(per_bin.c.units, String))
        if binned
        else cast(null(), Text)
    )
    return select(
        literal(definition.name, String),
        per_bin.c.dimension,
        per_bin.c.key,
        per_bin.c.day,
        func.min(per_bin.c.week),
        func.min(per_bin.c.month),
        func.sum(per_bin.c.units),
        func.sum(per_bin.c.value_sum),
        histogram,
    ).group_by(per_bin.c.dimension, per_bin.c.key, per_bin.c.day)


def _today(now: datetime) -> datetime:
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def rebuild(
    session: Session, actor: Actor, *, now: datetime | None = None, method: BuildMethod = "scan"
) -> RollupReport:
    """Throw the rollups away and roll up every closed day again (``opsdesk insights rollup
    --rebuild``). ``method``: ``scan`` (one pass per source table, numpy) or ``sql`` (the
    per-metric set-based SQL); both give the same rows."""
    require(actor, Permission.REPORT_READ)
    now = now or clock.now()
    today = _today(now)
    _build(session, None, today, method=method)
    return _record_full_build(session, now, today)


def _record_full_build(session: Session, now: datetime, today: datetime) -> RollupReport:
    """The state row after every closed day was rolled up: from here the metric layer uses them."""
    rows = session.scalar(select(func.count()).select_from(DailyRollup)) or 0
    state = session.get(RollupState, STATE_ID)
    if state is None:
        state = RollupState(id=STATE_ID)
        session.add(state)
    state.built_through = day_text(today.date())
    state.refreshed_at = now
    state.rebuilt_at = now
    state.rows = rows
    session.flush()
    return RollupReport(state.built_through, -1, rows, len(rolled_metrics()))


def _touched_days(session: Session, since: datetime, before: str) -> list[date]:
    """Days (before ``before``) that tickets changed since ``since`` could have counted in."""
    changed = select(Ticket.id).where(Ticket.updated_at >= since).scalar_subquery()
    day = Grain.DAY
    anchors = [
        select(time_bucket(day, column).label("day")).where(Ticket.id.in_(changed), column.is_not(None))
        for column in (
            Ticket.created_at,
            Ticket.first_reply_at,
            Ticket.first_solved_at,
            Ticket.solved_at,
            Ticket.satisfaction_at,
        )
    ]
    trail = select(time_bucket(day, AuditEvent.created_at).label("day")).where(
        AuditEvent.ticket_id.in_(changed)
    )
    messages = select(time_bucket(day, Message.created_at).label("day")).where(Message.ticket_id.in_(changed))
    every = union(*anchors, trail, messages).subquery()
    texts = session.scalars(select(every.c.day).where(every.c.day < before).order_by(every.c.day))
    return [date.fromisoformat(text[:10]) for text in texts if text]


def _ranges(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days joined into half-open ranges."""
    ranges: list[tuple[date, date]] = []
    for day in days:
        if ranges and ranges[-1][1] == day:
            ranges[-1] = (ranges[-1][0], day + timedelta(days=1))
        else:
            ranges.append((day, day + timedelta(days=1)))
    return ranges


def refresh(session: Session, *, now: datetime | None = None) -> RollupReport:
    """The job's incremental step: add the closed days not rolled up yet, and roll up again the
    days tickets changed since the last run touched. Builds everything on the first run."""
    now = now or clock.now()
    today = _today(now)
    state = session.get(RollupState, STATE_ID)
    if state is None:
        return rebuild(session, Actor.system("insights rollups"), now=now)
    touched = _touched_days(session, state.refreshed_at, state.built_through)
    rows = 0
    for first, after in _ranges(touched):
        rows += _build(session, _day(first), _day(after))
    built_through = day_start(state.built_through)
    if built_through < today:
        rows += _build(session, built_through, today)
    days = len(touched) + max((today - built_through).days, 0)
    state.built_through = day_text(today.date())
    state.refreshed_at = now
    state.rows = session.scalar(select(func.count()).select_from(DailyRollup)) or 0
    session.flush()
    return RollupReport(state.built_through, days, rows, len(rolled_metrics()))


def refresh_in_steps(database: Database, *, now: datetime | None = None) -> RollupReport:
    """The scheduled refresh, in short transactions of its own.

    On SQLite a write transaction stops every other writer, ticket creation included. So the
    first build over a long history computes every day's rows in a read transaction (one scan
    per source table) and writes them one day per write transaction; the state row that makes
    the metric layer use the rollups is written after the last day. Tickets changed meanwhile
    have ``updated_at`` after ``now`` and are rolled up again by the next refresh. Later
    refreshes are incremental and short.
    """
    now = now or clock.now()
    today = _today(now)
    with database.transaction(write=False) as session:
        has_state = session.get(RollupState, STATE_ID) is not None
        first = session.scalar(select(func.min(Ticket.created_at)))
    if has_state or first is None:
        with database.transaction() as session:
            return refresh(session, now=now)
    with database.transaction(write=False) as session:
        rows, rest = rollup_build.build(session, rolled_metrics(), key_columns(), ALL, today)
    by_day: dict[str, list[rollup_build.RollupRow]] = {}
    for row in rows:
        by_day.setdefault(row[3], []).append(row)
    del rows
    day = _day(min(first.date(), *(date.fromisoformat(text[:10]) for text in by_day)))
    while day < today:
        with database.transaction() as session:
            session.execute(delete(DailyRollup).where(DailyRollup.day == day_text(day.date())))
            rollup_build.write(session, by_day.pop(day_text(day.date()), []))
            if rest:
                _build_sql(session, day, day + timedelta(days=1), rest)
        day += timedelta(days=1)
    with database.transaction() as session:
        return _record_full_build(session, now, today)


def _day(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def built_through(session: Session) -> datetime | None:
    """Every UTC day before this instant is rolled up (None: no rollups)."""
    text = session.scalar(select(RollupState.built_through).where(RollupState.id == STATE_ID))
    return day_start(text) if text else None
