"""The full rollup build in one pass per source table: every metric's units computed in numpy
from ordered scans, and every dimension aggregated in memory.

Why: the set-based SQL build (:func:`opsdesk.insights.service.rollups._build`) runs ~10 grouped
sorts per metric on SQLite and correlated subqueries per unit (requester wait, periodic update,
next reply) on both databases, which takes minutes at a million tickets. Here each source is read
once: tickets (with their dimension keys, from the metric layer's own key expressions), public
messages, the status trail and SLA targets; the values follow the metric definitions
(:mod:`opsdesk.insights.definitions`) computed per unit with the database's own arithmetic:
- SQLite: instants as ``julianday()``, durations ``(end - start) * 86400.0`` as SQL computes them;
- PostgreSQL: instants as integer microseconds since the epoch, durations their exact difference
  divided by 10^6 (what ``EXTRACT(EPOCH FROM end - start)`` gives, rounded once to a float).
Bins use the C library's ``log`` like both databases. So units, sums and histograms equal the
SQL build's (sums up to the order of addition); a test compares both builds on SQLite and
PostgreSQL. A metric without a computation here is built by the SQL path.

Aggregation: per metric and dimension one ``bincount`` over (day, key[, bin]) codes; the rows
(``bin:units`` histograms included) are written with the driver's ``executemany`` on SQLite and
``COPY`` on PostgreSQL.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import BigInteger, String, case, cast, extract, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from opsdesk.auth.models import AuditEvent
from opsdesk.insights.definitions import (
    METRICS,
    SOLVED_OR_CLOSED,
    WAITING_STATUSES,
    MetricDefinition,
    base_from,
    not_merged,
)
from opsdesk.insights.enums import Dimension, MetricKind
from opsdesk.insights.histogram import BINS_PER_OCTAVE
from opsdesk.sla.enums import Metric as SlaMetric
from opsdesk.sla.enums import TargetStatus
from opsdesk.sla.models import SlaTarget
from opsdesk.tickets.models import Message, Ticket

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Objects = npt.NDArray[np.object_]
FETCH = 100_000
DENSE_PAIRS = 20_000_000  # (day, key, bin) cells counted densely up to this many
JULIAN_UNIX_EPOCH_DAY = 2_440_588  # the Julian day number of 1970-01-01
MICROSECONDS_PER_DAY = 86_400_000_000


@dataclass(frozen=True, slots=True)
class Units:
    """One metric's units: their anchor day (days since 1970-01-01), value and ticket position."""

    day: Ints
    value: Floats
    ticket: Ints


class _Instants:
    """How one database's instants are read and subtracted, as its SQL does it."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres

    def column(self, instant: Any) -> ColumnElement[Any]:
        if self.postgres:
            return cast(extract("epoch", instant) * 1_000_000, BigInteger)
        return func.julianday(instant)  # type: ignore[no-any-return]

    def seconds(self, end: Floats, start: Floats) -> Floats:
        if self.postgres:
            return (end - start) / 1e6  # type: ignore[no-any-return]
        return (end - start) * 86400.0  # type: ignore[no-any-return]

    def day(self, instant: Floats) -> Ints:
        """Days since 1970-01-01 of present instants (NaN must be filtered out first)."""
        if self.postgres:
            return np.floor_divide(instant, MICROSECONDS_PER_DAY).astype(np.int64)
        return (np.floor(instant + 0.5) - JULIAN_UNIX_EPOCH_DAY).astype(np.int64)


def _one_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _fetch(session: Session, statement: Any, numeric: int) -> tuple[list[Floats], list[Objects]]:
    """Run ``statement``; its first ``numeric`` columns as float arrays (NULL = NaN), the rest as
    object arrays. Through the driver's own cursor, in chunks (no SQLAlchemy rows)."""
    connection = session.connection()
    sql = str(statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    raw: Any = connection.connection.driver_connection
    cursor = raw.cursor()
    parts: list[Objects] = []
    try:
        cursor.execute(sql)
        width = len(cursor.description)
        while rows := cursor.fetchmany(FETCH):
            parts.append(np.array(rows, dtype=object).reshape(len(rows), width))
    finally:
        cursor.close()
    table = np.concatenate(parts) if parts else np.empty((0, width), dtype=object)
    return (
        [table[:, index].astype(np.float64) for index in range(numeric)],
        [table[:, index] for index in range(numeric, width)],
    )


def _codes(values: Objects) -> tuple[Ints, list[str | None]]:
    """Factorize text keys (None included): a code per value and the keys by code."""
    missing = np.array([value is None for value in values.tolist()], dtype=bool)
    texts = values.copy()
    texts[missing] = ""
    keys, inverse = np.unique(texts.astype(str), return_inverse=True)
    codes: Ints = inverse.reshape(-1).astype(np.int64)
    found: list[str | None] = [str(key) for key in keys.tolist()]
    if missing.any():
        codes = np.where(missing, len(found), codes)
        found.append(None)
    return codes, found


@dataclass(slots=True)
class _Tickets:
    ids: Floats
    created: Floats
    first_reply: Floats
    first_solved: Floats
    solved_at: Floats
    satisfaction_at: Floats
    replies: Floats
    reopened: Floats
    handle: Floats
    score: Floats
    solved: Bools
    followed_up: Bools
    # per rolled dimension: the code of each ticket's key, and the keys (text or None) by code
    codes: dict[Dimension, Ints]
    keys: dict[Dimension, list[str | None]]

    def positions(self, ticket_ids: Floats) -> tuple[Ints, Bools]:
        """Positions of the given ticket ids, and which exist (merged-away tickets do not)."""
        if self.ids.size == 0:
            return np.zeros(ticket_ids.size, np.int64), np.zeros(ticket_ids.size, bool)
        position = np.searchsorted(self.ids, ticket_ids).astype(np.int64)
        position = np.minimum(position, self.ids.size - 1)
        return position, self.ids[position] == ticket_ids


def _load_tickets(
    session: Session, instants: _Instants, key_columns: Mapping[Dimension, ColumnElement[Any]]
) -> _Tickets:
    dimensions = list(key_columns)
    column = instants.column
    statement = (
        select(
            Ticket.id,
            column(Ticket.created_at),
            column(Ticket.first_reply_at),
            column(Ticket.first_solved_at),
            column(Ticket.solved_at),
            column(Ticket.satisfaction_at),
            Ticket.staff_public_reply_count,
            Ticket.reopened_count,
            Ticket.handle_seconds,
            Ticket.satisfaction_score,
            _one_if(Ticket.status.in_(SOLVED_OR_CLOSED)),
            *key_columns.values(),
        )
        .select_from(base_from(METRICS["tickets_created"], {"assignee", "account"}))
        .where(not_merged())
    )
    numbers, texts = _fetch(session, statement, 11)
    order = np.argsort(numbers[0], kind="stable")
    numbers = [array[order] for array in numbers]
    ids = numbers[0]
    codes: dict[Dimension, Ints] = {}
    keys: dict[Dimension, list[str | None]] = {}
    for dimension, values in zip(dimensions, texts, strict=True):
        codes[dimension], keys[dimension] = _codes(values[order])
    follow_ups = select(Ticket.follow_up_of_id).where(Ticket.follow_up_of_id.is_not(None)).distinct()
    (followed,), _ = _fetch(session, follow_ups, 1)
    return _Tickets(
        ids=ids,
        created=numbers[1],
        first_reply=numbers[2],
        first_solved=numbers[3],
        solved_at=numbers[4],
        satisfaction_at=numbers[5],
        replies=numbers[6],
        reopened=numbers[7],
        handle=numbers[8],
        score=numbers[9],
        solved=numbers[10] == 1,
        followed_up=np.isin(ids, followed),
        codes=codes,
        keys=keys,
    )


# ----------------------------------------------------------------- grouped scans (numpy)


def _group_starts(groups: Floats) -> Bools:
    """For rows sorted by group: True where a group starts."""
    starts = np.ones(groups.size, bool)
    starts[1:] = groups[1:] != groups[:-1]
    return starts


def _earlier_max(values: Floats, groups: Floats) -> Floats:
    """Per row: the max of the earlier rows' values of its group (NaN for a group's first row).
    Rows sorted by group; doubling steps, so O(n log longest group)."""
    size = values.size
    result = np.full(size, np.nan)
    if size == 0:
        return result
    result[1:] = np.where(groups[1:] == groups[:-1], values[:-1], np.nan)
    step = 1
    while True:
        if step >= size:
            break
        shifted = np.full(size, np.nan)
        shifted[step:] = np.where(groups[step:] == groups[:-step], result[:-step], np.nan)
        if np.all(np.isnan(shifted)):
            break
        result = np.fmax(result, shifted)
        step *= 2
    return result


def _later_min(values: Floats, groups: Floats) -> Floats:
    """Per row: the min of the later rows' values of its group (NaN for a group's last row)."""
    reversed_min = -_earlier_max(-values[::-1], groups[::-1])
    return reversed_min[::-1]  # type: ignore[no-any-return]


# ----------------------------------------------------------------- per metric units


class _Sources:
    """What the unit computations read, each loaded on first use."""

    def __init__(self, session: Session, instants: _Instants, tickets: _Tickets) -> None:
        self.session = session
        self.instants = instants
        self.tickets = tickets
        self._messages: tuple[Floats, Floats, Bools] | None = None
        self._targets: tuple[Floats, Floats, Bools, Objects] | None = None

    def messages(self) -> tuple[Floats, Floats, Bools]:
        """Public staff and customer messages in (ticket, id) order: ticket id, instant, staff."""
        if self._messages is None:
            statement = select(
                Message.ticket_id,
                Message.id,
                self.instants.column(Message.created_at),
                _one_if(Message.author_kind == "staff"),
            ).where(Message.is_public.is_(True), Message.author_kind.in_(("staff", "customer")))
            (ticket, ids, at, staff), _ = _fetch(self.session, statement, 4)
            order = np.lexsort((ids, ticket))
            self._messages = (ticket[order], at[order], staff[order] == 1)
        return self._messages

    def targets(self) -> tuple[Floats, Floats, Bools, Objects]:
        """SLA targets settled (achieved or breached): ticket id, anchor instant, achieved, metric."""
        if self._targets is None:
            target = SlaTarget.__table__
            statement = select(
                target.c.ticket_id,
                self.instants.column(func.coalesce(target.c.breached_at, target.c.achieved_at)),
                _one_if(target.c.status == TargetStatus.ACHIEVED.value),
                target.c.metric,
            ).where(target.c.status.in_((TargetStatus.ACHIEVED.value, TargetStatus.BREACHED.value)))
            (ticket, anchor, achieved), (metric,) = _fetch(self.session, statement, 3)
            self._targets = (ticket, anchor, achieved == 1, metric)
        return self._targets

    def units(self, anchor: Floats, population: Bools, value: Floats, ticket: Ints | None = None) -> Units:
        """Units with a present anchor in the population; ``ticket`` positions (default: per ticket)."""
        keep = population & ~np.isnan(anchor)
        positions = np.arange(anchor.size, dtype=np.int64) if ticket is None else ticket
        return Units(self.instants.day(anchor[keep]), value[keep].astype(np.float64), positions[keep])


def _ticket_metric(
    anchor: Callable[[_Tickets], Floats],
    population: Callable[[_Tickets], Bools],
    value: Callable[[_Sources, _Tickets], Floats],
) -> Callable[[_Sources], Units]:
    def compute(sources: _Sources) -> Units:
        t = sources.tickets
        return sources.units(anchor(t), population(t), value(sources, t))

    return compute


def _ones(sources: _Sources, t: _Tickets) -> Floats:
    return np.ones(t.ids.size)


def _flag(condition: Bools) -> Floats:
    return condition.astype(np.float64)


def _present(values: Floats) -> Bools:
    return ~np.isnan(values)


def _longest_gap(sources: _Sources, t: _Tickets) -> Floats:
    """Per ticket: the longest gap between consecutive public staff replies (NaN: fewer than two).
    As the definition: each reply against the latest earlier reply (by id) of its ticket."""
    ticket, at, staff = sources.messages()
    ticket, at = ticket[staff], at[staff]
    previous = _earlier_max(at, ticket)
    has_previous = ~np.isnan(previous)
    gaps = sources.instants.seconds(at[has_previous], previous[has_previous])
    longest = np.full(t.ids.size, np.nan)
    position, exists = t.positions(ticket[has_previous])
    np.fmax.at(longest, position[exists], gaps[exists])
    return longest


def _requester_wait(sources: _Sources, t: _Tickets) -> Floats:
    """Per ticket: seconds in new / open / on-hold up to the last solve, from the status trail
    (as the definition: each waiting change until the earliest later change or the solve, plus
    the time before the first change)."""
    instants = sources.instants
    trail = AuditEvent.__table__
    status_text = func.trim(cast(trail.c.new_value, String), '"')
    statement = select(
        trail.c.ticket_id,
        trail.c.id,
        instants.column(trail.c.created_at),
        _one_if(status_text.in_(WAITING_STATUSES)),
    ).where(trail.c.entity_type == "ticket", trail.c.field == "status", trail.c.ticket_id.is_not(None))
    (ticket, ids, at, waiting_flag), _ = _fetch(sources.session, statement, 4)
    order = np.lexsort((ids, ticket))
    ticket, at, waiting = ticket[order], at[order], waiting_flag[order] == 1
    position, exists = t.positions(ticket)
    solved_at = np.where(exists, t.solved_at[position], np.nan)
    later = _later_min(at, ticket)
    until = np.where(np.isnan(later), solved_at, later)
    counted = waiting & exists
    spans = instants.seconds(until[counted], at[counted])
    # NULL spans (no solve) make the SQL sum skip them.
    valid = ~np.isnan(spans)
    total = np.zeros(t.ids.size)
    np.add.at(total, position[counted][valid], spans[valid])
    first_change = np.full(t.ids.size, np.nan)
    np.fmin.at(first_change, position[exists], at[exists])
    before = np.where(np.isnan(first_change), t.solved_at, first_change)
    return total + instants.seconds(before, t.created)  # type: ignore[no-any-return]


def _next_replies(sources: _Sources) -> Units:
    """Each public staff reply after the first: seconds since the oldest public customer message
    after the previous staff reply (units without such a message do not count)."""
    ticket, at, staff = sources.messages()
    staff_before: Ints = np.cumsum(staff, dtype=np.int64) - staff  # staff rows before each row (all tickets)
    staff_rows = np.flatnonzero(staff)
    # A staff reply's previous staff reply is the staff row just before it, if in its ticket.
    has_previous = np.zeros(staff_rows.size, bool)
    has_previous[1:] = ticket[staff_rows[1:]] == ticket[staff_rows[:-1]]
    # The customer messages a reply answers: those with as many staff rows before them.
    customer = ~staff
    oldest = np.full(staff_rows.size + 1, np.nan)
    np.fmin.at(oldest, staff_before[customer], at[customer])
    answers = staff_rows[has_previous]
    asked = oldest[staff_before[answers]]
    population = ~np.isnan(asked)
    answers, asked = answers[population], asked[population]
    position, exists = sources.tickets.positions(ticket[answers])
    values = sources.instants.seconds(at[answers], asked)
    return sources.units(at[answers], exists, values, position)


def _sla(metric: SlaMetric | None) -> Callable[[_Sources], Units]:
    def compute(sources: _Sources) -> Units:
        ticket, anchor, achieved, metrics = sources.targets()
        population = np.ones(ticket.size, bool) if metric is None else np.equal(metrics, metric.value)
        position, exists = sources.tickets.positions(ticket)
        return sources.units(anchor, population & exists, _flag(achieved), position)

    return compute


UNITS: dict[str, Callable[[_Sources], Units]] = {
    "tickets_created": _ticket_metric(lambda t: t.created, lambda t: np.ones(t.ids.size, bool), _ones),
    "tickets_solved": _ticket_metric(lambda t: t.solved_at, lambda t: t.solved, _ones),
    "first_reply_time": _ticket_metric(
        lambda t: t.first_reply,
        lambda t: _present(t.first_reply),
        lambda s, t: s.instants.seconds(t.first_reply, t.created),
    ),
    "next_reply_time": _next_replies,
    "periodic_update": _ticket_metric(
        lambda t: t.solved_at, lambda t: t.solved & (t.replies >= 2), _longest_gap
    ),
    "full_resolution_time": _ticket_metric(
        lambda t: t.solved_at, lambda t: t.solved, lambda s, t: s.instants.seconds(t.solved_at, t.created)
    ),
    "requester_wait_time": _ticket_metric(lambda t: t.solved_at, lambda t: t.solved, _requester_wait),
    "handle_time": _ticket_metric(lambda t: t.solved_at, lambda t: t.solved, lambda s, t: t.handle),
    "first_contact_resolution": _ticket_metric(
        lambda t: t.first_solved,
        lambda t: _present(t.first_solved) & (t.replies >= 1),
        lambda s, t: _flag((t.replies == 1) & (t.reopened == 0)),
    ),
    "solved_without_reply": _ticket_metric(
        lambda t: t.first_solved, lambda t: _present(t.first_solved), lambda s, t: _flag(t.replies == 0)
    ),
    "reopen_rate": _ticket_metric(
        lambda t: t.first_solved, lambda t: _present(t.first_solved), lambda s, t: _flag(t.reopened > 0)
    ),
    "follow_up_rate": _ticket_metric(
        lambda t: t.first_solved, lambda t: _present(t.first_solved), lambda s, t: _flag(t.followed_up)
    ),
    "csat": _ticket_metric(
        lambda t: t.satisfaction_at, lambda t: _present(t.score), lambda s, t: _flag(t.score >= 4)
    ),
    "satisfaction_score": _ticket_metric(
        lambda t: t.satisfaction_at, lambda t: _present(t.score), lambda s, t: t.score
    ),
    "sla_attainment": _sla(None),
    **{f"sla_attainment_{metric.value}": _sla(metric) for metric in SlaMetric},
}


# ----------------------------------------------------------------- aggregation


def _bins(definition: MetricDefinition, values: Floats) -> Ints:
    """The histogram bin per value, as the SQL ``log_bin`` computes it (the C library's log)."""
    if definition.kind is MetricKind.SCORE:
        return values.astype(np.int64)
    unique, inverse = np.unique(values, return_inverse=True)
    ln2 = math.log(2.0)
    per_unique = np.array(
        [
            0 if v <= 0 else 1 if v < 1 else 2 + math.floor(math.log(v) * BINS_PER_OCTAVE / ln2)
            for v in unique.tolist()
        ],
        dtype=np.int64,
    )
    return per_unique[inverse.reshape(-1)]  # type: ignore[no-any-return]


# metric, dimension, key, day, week, month, units, value_sum, histogram
RollupRow = tuple[str, str, str | None, str, str, str, int, float, str | None]
ROW_COLUMNS = ("metric", "dimension", "key", "day", "week", "month", "units", "value_sum", "histogram")


class _Days:
    """Day numbers to the bucket texts of time_bucket (day, ISO week's Monday, month)."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[str, str, str]] = {}

    def __call__(self, day: int) -> tuple[str, str, str]:
        found = self._texts.get(day)
        if found is None:
            civil = date(1970, 1, 1) + timedelta(days=day)
            monday = civil - timedelta(days=civil.weekday())
            found = (
                f"{civil.isoformat()}T00:00",
                f"{monday.isoformat()}T00:00",
                f"{civil.replace(day=1).isoformat()}T00:00",
            )
            self._texts[day] = found
        return found


def aggregate(
    definition: MetricDefinition,
    units: Units,
    tickets: _Tickets,
    dimensions: Sequence[Dimension],
    all_key: str,
    days: _Days,
) -> Iterator[RollupRow]:
    """The rollup rows of one metric: per day, per dimension key (and ``all``)."""
    binned = definition.kind in (MetricKind.DURATION, MetricKind.SCORE)
    value, day, ticket = units.value, units.day, units.ticket
    if binned:
        present = ~np.isnan(value)
        value, day, ticket = value[present], day[present], ticket[present]
    if day.size == 0:
        return
    first_day = int(day.min())
    day_index = day - first_day
    day_count = int(day_index.max()) + 1
    day_texts = [days(first_day + offset) for offset in range(day_count)]
    bins = _bins(definition, value) if binned else np.zeros(day.size, np.int64)
    bin_count = int(bins.max()) + 1 if binned else 1
    for dimension in (None, *dimensions):
        keys: list[str | None]
        if dimension is None:
            code, keys = np.zeros(day.size, np.int64), [None]
        else:
            code, keys = tickets.codes[dimension][ticket], tickets.keys[dimension]
        key_count = len(keys)
        cell = day_index * key_count + code
        cells = day_count * key_count
        units_per_cell = np.bincount(cell, minlength=cells)
        sums = np.bincount(cell, weights=value, minlength=cells)
        occupied = np.flatnonzero(units_per_cell)
        histograms: list[str | None] | itertools.repeat[None] = itertools.repeat(None)
        if binned:
            pair = cell * bin_count + bins
            if cells * bin_count <= DENSE_PAIRS:
                dense = np.bincount(pair, minlength=cells * bin_count)
                pairs = np.flatnonzero(dense)
                counts = dense[pairs]
            else:
                pairs, counts = np.unique(pair, return_counts=True)
            texts = [f"{b}:{n}" for b, n in zip((pairs % bin_count).tolist(), counts.tolist(), strict=True)]
            # pairs are sorted by cell, and every occupied cell has at least one: aligned.
            bounds = [0, *(np.flatnonzero(np.diff(pairs // bin_count)) + 1).tolist(), len(texts)]
            histograms = [",".join(texts[begin:end]) for begin, end in itertools.pairwise(bounds)]
        name = all_key if dimension is None else dimension.value
        cell_day = (occupied // key_count).tolist()
        yield from zip(
            itertools.repeat(definition.name),
            itertools.repeat(name),
            [keys[k] for k in (occupied % key_count).tolist()],
            [day_texts[d][0] for d in cell_day],
            [day_texts[d][1] for d in cell_day],
            [day_texts[d][2] for d in cell_day],
            units_per_cell[occupied].tolist(),
            sums[occupied].tolist(),
            histograms,
        )


def build(
    session: Session,
    definitions: Sequence[MetricDefinition],
    key_columns: Mapping[Dimension, ColumnElement[Any]],
    all_key: str,
    end: datetime,
) -> tuple[list[RollupRow], list[MetricDefinition]]:
    """Rows of every metric computed here for the days before ``end`` (all of them), and the
    definitions left for the SQL build. ``key_columns``: each rolled dimension's key as text."""
    postgres = session.get_bind().dialect.name == "postgresql"
    instants = _Instants(postgres)
    dimensions = list(key_columns)
    tickets = _load_tickets(session, instants, key_columns)
    sources = _Sources(session, instants, tickets)
    end_day = (end.astimezone(UTC).date() - date(1970, 1, 1)).days
    days = _Days()
    rows: list[RollupRow] = []
    rest: list[MetricDefinition] = []
    for definition in definitions:
        compute = UNITS.get(definition.name)
        if compute is None:
            rest.append(definition)
            continue
        units = compute(sources)
        before = units.day < end_day
        units = Units(units.day[before], units.value[before], units.ticket[before])
        rows.extend(aggregate(definition, units, tickets, dimensions, all_key, days))
    return rows, rest


def write(session: Session, rows: Sequence[RollupRow]) -> int:
    """Append the rows to the rollup table (COPY on PostgreSQL, executemany on SQLite)."""
    names = ", ".join(ROW_COLUMNS)
    raw: Any = session.connection().connection.driver_connection
    if session.get_bind().dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY insights_daily_rollups ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return len(rows)
    cursor = raw.cursor()
    try:
        marks = ", ".join("?" for _ in ROW_COLUMNS)
        cursor.executemany(f"INSERT INTO insights_daily_rollups ({names}) VALUES ({marks})", rows)
    finally:
        cursor.close()
    return len(rows)
