"""SLA state for many tickets at once, vectorized: due times and breach flags of active targets
computed with numpy over each calendar's timeline (used after a calendar changes, and by
``opsdesk bench sla``).

Inputs are arrays of epoch seconds; a target's due time is ``running_since`` plus its remaining
budget, in business time for business-hours targets (per calendar) and in calendar time otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.sla.business_time import BusinessCalendar
from opsdesk.sla.calendars import calendar_by_id
from opsdesk.sla.models import SlaTarget

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


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
    """Due time, breach flag and time left for every target. ``calendar_index`` names the
    calendar of each business-hours target; -1 means calendar time."""
    due = running_since + remaining
    for index, calendar in calendars.items():
        chosen = calendar_index == index
        if np.any(chosen):
            due[chosen] = calendar.add_seconds_array(running_since[chosen], remaining[chosen])
    return SlaState(due=due, breached=due <= now, time_left=due - now)


def recompute_active_targets(session: Session, *, chunk: int = 20_000) -> int:
    """Recompute ``due_at`` of every active target from its bookkeeping (after a calendar edit).
    Returns how many targets were updated."""
    from datetime import UTC, datetime

    updated = 0
    last_id = 0
    calendars: dict[int, BusinessCalendar] = {}
    while True:
        rows = session.execute(
            select(
                SlaTarget.id,
                SlaTarget.running_since,
                SlaTarget.target_seconds,
                SlaTarget.elapsed_seconds,
                SlaTarget.business_hours,
                SlaTarget.calendar_id,
            )
            .where(SlaTarget.status == "active", SlaTarget.kind == "policy", SlaTarget.id > last_id)
            .order_by(SlaTarget.id)
            .limit(chunk)
        ).all()
        if not rows:
            return updated
        last_id = rows[-1][0]
        index = np.full(len(rows), -1, dtype=np.int64)
        for position, row in enumerate(rows):
            if row.business_hours:
                key = row.calendar_id if row.calendar_id is not None else 0
                if key not in calendars:
                    found = calendar_by_id(session, row.calendar_id)
                    if found is None:
                        continue
                    calendars[key] = found
                index[position] = key
        since = np.array([row.running_since.timestamp() for row in rows], dtype=np.float64)
        remaining = np.array(
            [max(row.target_seconds - row.elapsed_seconds, 0.0) for row in rows], dtype=np.float64
        )
        state = recompute(since, remaining, index, calendars, clock.now().timestamp())
        # Core executemany on the table: one prepared UPDATE for the chunk, no ORM bookkeeping.
        table: Table = SlaTarget.__table__  # type: ignore[assignment]
        session.connection().execute(
            update(table).where(table.c.id == bindparam("target_id")).values(due_at=bindparam("new_due_at")),
            [
                {"target_id": row.id, "new_due_at": datetime.fromtimestamp(float(due), UTC)}
                for row, due in zip(rows, state.due, strict=True)
            ],
        )
        updated += len(rows)
