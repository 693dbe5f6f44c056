"""SLA state for many tickets at once, vectorized: due times and breach flags of active targets
recomputed from the database with numpy over each calendar's timeline.

Used after a business calendar is edited (the ``sla.recompute`` job) and by ``opsdesk bench sla``.

The path, per chunk of active policy targets (keyset by id):
1. load plain columns with one Core ``SELECT`` (no ORM objects): id, ``running_since`` and
   ``due_at`` as integer microseconds since the epoch (converted by the database), the remaining
   budget ``target_seconds - elapsed_seconds``, and the calendar key (-1 for calendar time);
2. compute every due time at once (:func:`recompute`: ``numpy.searchsorted`` over the calendar's
   open intervals; calendar time in integer microseconds);
3. write back only the rows whose due time moved (by more than a millisecond): SQLite through one
   prepared ``UPDATE`` run with ``executemany``, PostgreSQL through one
   ``UPDATE … FROM unnest(ids, dues)`` statement per chunk.

Breach status: the recompute reports how many active targets are now due; marking them breached
stays with :func:`opsdesk.sla.clocks.sweep_breaches` (scheduled every minute, indexed by
``(status, due_at)``), because a breach is an audit row and a ``SlaBreached`` event each
(triggers, escalation matrix) — never a silent column update. Fixed deadlines (``kind =
'deadline'``) and paused targets (no due time) are not touched.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, repeat
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.sla.business_time import BusinessCalendar
from opsdesk.sla.calendars import calendar_by_id

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CALENDAR_TIME = -1
DEFAULT_CALENDAR = 0  # business-hours target without a calendar: the default calendar
CHANGE_TOLERANCE_US = 1_000  # float noise below a millisecond is not a change worth a write


@dataclass(frozen=True, slots=True)
class SlaState:
    due: FloatArray
    breached: npt.NDArray[np.bool_]
    time_left: FloatArray


def recompute(
    running_since: FloatArray,
    remaining: FloatArray,
    calendar_index: IntArray,
    calendars: Mapping[int, BusinessCalendar],
    now: float,
) -> SlaState:
    """Due time, breach flag and time left for every target (epoch seconds). ``calendar_index``
    names the calendar of each business-hours target; -1 means calendar time."""
    due = running_since + remaining
    for index, calendar in calendars.items():
        chosen = calendar_index == index
        if np.any(chosen):
            due[chosen] = calendar.add_seconds_array(running_since[chosen], remaining[chosen])
    return SlaState(due=due, breached=due <= now, time_left=due - now)


def due_microseconds(
    since_us: IntArray,
    remaining: FloatArray,
    calendar_index: IntArray,
    calendars: Mapping[int, BusinessCalendar | None],
) -> IntArray:
    """Due times in integer epoch microseconds, rounded as the per-ticket path rounds them
    (``timedelta`` to the microsecond). Calendar time stays in integers; a key whose calendar is
    ``None`` (no calendar exists) falls back to calendar time, like the per-ticket path."""
    remaining = np.maximum(remaining, 0.0)
    due = since_us + np.rint(remaining * 1e6).astype(np.int64)
    for key, calendar in calendars.items():
        if calendar is None:
            continue
        chosen = calendar_index == key
        if np.any(chosen):
            business = calendar.add_seconds_array(since_us[chosen] / 1e6, remaining[chosen])
            due[chosen] = np.rint(business * 1e6).astype(np.int64)
    return due


@dataclass(frozen=True, slots=True)
class RecomputeResult:
    targets: int  # active policy targets looked at
    changed: int  # due times written back
    due_now: int  # active targets whose due time has passed (the sweep breaches them)
    load_seconds: float = 0.0
    compute_seconds: float = 0.0
    write_seconds: float = 0.0


# SQLite stores our instants as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): whole seconds by the date
# functions, microseconds from the text. unixepoch() (3.38+) is the faster spelling.
_SQLITE_US = (
    "(unixepoch({column}) * 1000000 + CAST(substr({column}, 21, 6) AS INTEGER))"
    if sqlite3.sqlite_version_info >= (3, 38)
    else "(CAST(strftime('%s', {column}) AS INTEGER) * 1000000 + CAST(substr({column}, 21, 6) AS INTEGER))"
)
_POSTGRES_US = "CAST(extract(epoch FROM {column}) * 1000000 AS BIGINT)"
_SELECT = """
SELECT id, {since}, target_seconds - elapsed_seconds,
       CASE WHEN business_hours THEN COALESCE(calendar_id, 0) ELSE -1 END, {due}
FROM sla_targets
WHERE {plus}status = 'active' AND kind = 'policy' AND running_since IS NOT NULL AND id > {mark}{only}
ORDER BY id
LIMIT {mark}
"""
_POSTGRES_UPDATE = text(
    """
UPDATE sla_targets AS target
SET due_at = TIMESTAMPTZ 'epoch' + moved.due_us * INTERVAL '1 microsecond', updated_at = :now
FROM unnest(CAST(:ids AS BIGINT[]), CAST(:dues AS BIGINT[])) AS moved(id, due_us)
WHERE target.id = moved.id
"""
)
_SQLITE_UPDATE = "UPDATE sla_targets SET due_at = ?, updated_at = ? WHERE id = ?"


def _sqlite_times(microseconds: IntArray) -> list[str]:
    """SQLAlchemy's SQLite storage format for our UTC datetimes: ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    text_values = np.datetime_as_string(microseconds.astype("datetime64[us]"), unit="us")
    if text_values.size:
        # ISO 'YYYY-MM-DDTHH:MM:SS.ffffff': the 11th character becomes a space, in place.
        text_values.view(np.uint32).reshape(text_values.size, -1)[:, 10] = ord(" ")
    return list(text_values.tolist())


def recompute_due_times(
    session: Session,
    *,
    now: datetime | None = None,
    calendar_ids: Sequence[int] | None = None,
    chunk: int = 250_000,
) -> RecomputeResult:
    """Recompute ``due_at`` of every active policy target from its bookkeeping, in the caller's
    transaction, writing only the rows that moved. ``calendar_ids`` limits the pass to
    business-hours targets on those calendars (and on none: the default's); ``None`` recomputes
    every active target. See the module docstring."""
    connection: Connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    as_us = _SQLITE_US if sqlite else _POSTGRES_US
    mark = "?" if sqlite else "%s"
    only = ""
    if calendar_ids is not None:
        listed = ", ".join(str(int(value)) for value in calendar_ids) or "NULL"
        only = f" AND business_hours AND (calendar_id IS NULL OR calendar_id IN ({listed}))"
    query = _SELECT.format(
        since=as_us.format(column="running_since"),
        due=f"COALESCE({as_us.format(column='due_at')}, 0)",
        mark=mark,
        # SQLite: walk the primary key (a full pass), not the (status, due_at) index plus a sort.
        plus="+" if sqlite else "",
        only=only,
    )
    instant = now or clock.now()
    now_us = round(instant.timestamp() * 1e6)
    stamp = _sqlite_times(np.array([now_us], dtype=np.int64))[0]
    calendars: dict[int, BusinessCalendar | None] = {}
    total = changed = due_now = 0
    load = compute = write = 0.0
    after = 0
    # The driver's own cursor, in this transaction: plain tuples, no Row object per row.
    raw: Any = connection.connection.driver_connection
    while True:
        began = time.perf_counter()
        cursor = raw.cursor()
        try:
            cursor.execute(query, (after, chunk))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if not rows:
            load += time.perf_counter() - began
            break
        after = int(rows[-1][0])
        # Every value is exact in float64 (microsecond instants < 2**53); one array, then columns.
        count = len(rows)
        table = np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=count * 5).reshape(count, 5)
        del rows
        loaded = time.perf_counter()
        load += loaded - began
        ids = table[:, 0].astype(np.int64)
        since_us = table[:, 1].astype(np.int64)
        remaining = table[:, 2]
        calendar_index = table[:, 3].astype(np.int64)
        old_due = table[:, 4].astype(np.int64)
        for key in np.unique(calendar_index).tolist():
            if key != CALENDAR_TIME and key not in calendars:
                calendars[key] = calendar_by_id(session, key or None)
        due = due_microseconds(since_us, remaining, calendar_index, calendars)
        moved = np.abs(due - old_due) > CHANGE_TOLERANCE_US
        total += ids.size
        due_now += int(np.count_nonzero(due <= now_us))
        computed = time.perf_counter()
        compute += computed - loaded
        if np.any(moved):
            moved_ids = ids[moved]
            moved_due = due[moved]
            changed += int(moved_ids.size)
            if sqlite:
                cursor = raw.cursor()
                try:
                    cursor.executemany(
                        _SQLITE_UPDATE,
                        zip(_sqlite_times(moved_due), repeat(stamp), moved_ids.tolist(), strict=False),
                    )
                finally:
                    cursor.close()
            else:
                connection.execute(
                    _POSTGRES_UPDATE, {"ids": moved_ids.tolist(), "dues": moved_due.tolist(), "now": instant}
                )
        write += time.perf_counter() - computed
        if ids.size < chunk:
            break
    return RecomputeResult(
        targets=total,
        changed=changed,
        due_now=due_now,
        load_seconds=load,
        compute_seconds=compute,
        write_seconds=write,
    )


def recompute_active_targets(session: Session, *, chunk: int = 250_000) -> int:
    """Recompute every active policy target's ``due_at`` (after a calendar edit); returns how
    many due times moved."""
    return recompute_due_times(session, chunk=chunk).changed
