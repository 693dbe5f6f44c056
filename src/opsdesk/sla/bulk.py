"""SLA state for many tickets at once, vectorized: due times and breach flags of active targets
recomputed from the database with numpy over each calendar's timeline.

Used after a business calendar is edited (the ``sla.recompute`` job) and by ``opsdesk bench sla``.

The path, per chunk of active policy targets (keyset by id):
1. load plain columns with one Core ``SELECT`` (no ORM objects): id, ``running_since`` and
   ``due_at`` as integer microseconds since the epoch (converted by the database), the remaining
   budget ``target_seconds - elapsed_seconds``, and the calendar key (-1 for calendar time);
2. compute every due time at once (:func:`recompute`: ``numpy.searchsorted`` over the calendar's
   open intervals; calendar time in integer microseconds);
3. after every chunk is computed, write back only the rows whose due time moved (by more than a
   millisecond), in primary-key order: SQLite through one prepared ``UPDATE`` run with
   ``executemany`` (dropping the partial index of active due times first and building it again
   after, when a quarter of it or more moves: see :func:`_write_sqlite`), PostgreSQL through one
   ``UPDATE … FROM unnest(ids, dues)`` statement per chunk of rows.

Breach status: the recompute reports how many active targets are now due; marking them breached
stays with :func:`opsdesk.sla.clocks.sweep_breaches` (scheduled every minute, through the
partial index of active due times), because a breach is an audit row and a ``SlaBreached`` event each
(triggers, escalation matrix) — never a silent column update. Fixed deadlines (``kind =
'deadline'``) and paused targets (no due time) are not touched.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain, islice
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.sla.business_time import BusinessCalendar
from opsdesk.sla.calendars import calendar_by_id
from opsdesk.sla.models import ACTIVE_DUE_INDEX

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CALENDAR_TIME = -1
DEFAULT_CALENDAR = 0  # business-hours target without a calendar: the default calendar
CHANGE_TOLERANCE_US = 1_000  # float noise below a millisecond is not a change worth a write
# SQLite: moving one entry of the active due-time index costs about four times what building the
# index costs per entry (measured at 1M targets), so past a quarter of the index it is rebuilt.
REBUILD_SHARE = 0.25
REBUILD_MIN_ROWS = 20_000


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
WHERE {plus}status = 'active' AND kind = 'policy' AND running_since IS NOT NULL{only}
"""
_POSTGRES_UPDATE = text(
    """
UPDATE sla_targets AS target
SET due_at = TIMESTAMPTZ 'epoch' + moved.due_us * INTERVAL '1 microsecond', updated_at = :now
FROM unnest(CAST(:ids AS BIGINT[]), CAST(:dues AS BIGINT[])) AS moved(id, due_us)
WHERE target.id = moved.id
"""
)
_SQLITE_UPDATE = "UPDATE sla_targets SET due_at = ?, updated_at = '{stamp}' WHERE id = ?"


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
    only = ""
    if calendar_ids is not None:
        listed = ", ".join(str(int(value)) for value in calendar_ids) or "NULL"
        only = f" AND business_hours AND (calendar_id IS NULL OR calendar_id IN ({listed}))"
    query = _SELECT.format(
        since=as_us.format(column="running_since"),
        due=f"COALESCE({as_us.format(column='due_at')}, 0)",
        # SQLite: walk the table (a full pass in key order), not the index of active due times.
        plus="+" if sqlite else "",
        only=only,
    )
    instant = now or clock.now()
    now_us = round(instant.timestamp() * 1e6)
    calendars: dict[int, BusinessCalendar | None] = {}
    total = due_now = 0
    load = compute = 0.0
    moved_ids: list[IntArray] = []
    moved_dues: list[IntArray] = []
    # One statement, read in chunks on the driver's own cursor, in this transaction: plain tuples,
    # no Row object per row. PostgreSQL: a server-side cursor (the rows in the table's order, no
    # sort, not all in memory at once).
    raw: Any = connection.connection.driver_connection
    cursor = raw.cursor() if sqlite else raw.cursor(name="sla_recompute_due_times")
    try:
        began = time.perf_counter()
        if not sqlite:
            cursor.itersize = 20_000
        cursor.execute(query)
        while True:
            # Every value is exact in float64 (microsecond instants < 2**53): the rows stream into
            # one array (no list of them kept), then it is cut into columns.
            table = np.fromiter(chain.from_iterable(islice(cursor, chunk)), dtype=np.float64).reshape(-1, 5)
            loaded = time.perf_counter()
            load += loaded - began
            if not table.shape[0]:
                break
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
            moved_ids.append(ids[moved])
            moved_dues.append(due[moved])
            began = time.perf_counter()
            compute += began - loaded
            if ids.size < chunk:
                break
    finally:
        cursor.close()
    began = time.perf_counter()
    ids = np.concatenate(moved_ids) if moved_ids else np.zeros(0, dtype=np.int64)
    dues = np.concatenate(moved_dues) if moved_dues else np.zeros(0, dtype=np.int64)
    in_key_order = np.argsort(ids, kind="stable")  # the table's pages in sequence
    ids, dues = ids[in_key_order], dues[in_key_order]
    if ids.size:
        if sqlite:
            _write_sqlite(raw, ids, dues, _sqlite_times(np.array([now_us], dtype=np.int64))[0])
        else:
            for first in range(0, ids.size, chunk):
                connection.execute(
                    _POSTGRES_UPDATE,
                    {
                        "ids": ids[first : first + chunk].tolist(),
                        "dues": dues[first : first + chunk].tolist(),
                        "now": instant,
                    },
                )
    return RecomputeResult(
        targets=total,
        changed=int(ids.size),
        due_now=due_now,
        load_seconds=load,
        compute_seconds=compute,
        write_seconds=time.perf_counter() - began,
    )


def _write_sqlite(raw: Any, ids: IntArray, dues: IntArray, stamp: str) -> None:
    """Write moved due times in primary-key order (the table's pages in sequence). Each moved row
    also moves its entry in the index of active due times, a random place in that B-tree; when
    many move, dropping the index and building it again in one sorted pass costs less (the DDL
    is part of the caller's transaction: a rollback restores the index, and readers keep seeing
    the old snapshot and its index until the commit)."""
    cursor = raw.cursor()
    try:
        rebuild: str | None = None
        if ids.size >= REBUILD_MIN_ROWS:
            cursor.execute("SELECT count(*) FROM sla_targets WHERE status = 'active'")
            (indexed,) = cursor.fetchone()
            if ids.size >= REBUILD_SHARE * indexed:
                cursor.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (ACTIVE_DUE_INDEX,)
                )
                found = cursor.fetchone()
                rebuild = None if found is None else str(found[0])
        if rebuild is not None:
            cursor.execute(f'DROP INDEX "{ACTIVE_DUE_INDEX}"')
        # The stamp is our own formatted instant, written into the statement once.
        cursor.executemany(
            _SQLITE_UPDATE.format(stamp=stamp), zip(_sqlite_times(dues), ids.tolist(), strict=True)
        )
        if rebuild is not None:
            # Let the index sort use a second core; the connection's setting comes back after.
            cursor.execute("PRAGMA threads")
            (threads,) = cursor.fetchone()
            cursor.execute("PRAGMA threads = 2")
            try:
                cursor.execute(rebuild)
            finally:
                cursor.execute(f"PRAGMA threads = {int(threads)}")
    finally:
        cursor.close()


def recompute_active_targets(session: Session, *, chunk: int = 250_000) -> int:
    """Recompute every active policy target's ``due_at`` (after a calendar edit); returns how
    many due times moved."""
    return recompute_due_times(session, chunk=chunk).changed
