"""``opsdesk bench sla``: business-time math and SLA state for a million open tickets.

- business-time operations per second: ``add`` and ``between`` on a weekday 09:00-17:00 New York
  calendar with US holidays, as epoch-second calls (what the clocks use in bulk) and as the
  datetime API (what one event uses);
- SLA state (due time, breached, time left) for ``--tickets`` open tickets recomputed at once:
  targets spread over the last two weeks, a mix of business-hours (two calendars) and calendar
  time, vectorized with numpy (:mod:`opsdesk.sla.bulk`);
- with ``--database-rows``: the same recomputation of ``due_at`` for targets stored in a fresh
  SQLite database, rows per second.
Prints one JSON object.
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import numpy as np
import orjson
import typer

from opsdesk.sla.bulk import recompute
from opsdesk.sla.business_time import BusinessCalendar, parse_hours

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def _calendars() -> tuple[BusinessCalendar, BusinessCalendar]:
    new_york = BusinessCalendar(
        "America/New_York", parse_hours({day: [["09:00", "17:00"]] for day in WEEKDAYS}), holiday_country="US"
    )
    berlin = BusinessCalendar(
        "Europe/Berlin",
        parse_hours(
            {
                **{day: [["08:00", "12:00"], ["13:00", "18:00"]] for day in WEEKDAYS},
                "sat": [["22:00", "04:00"]],
            }
        ),
        holiday_country="DE",
    )
    return new_york, berlin


def business_time_rates(operations: int) -> dict[str, float]:
    calendar, _ = _calendars()
    draw = random.Random(4)
    base = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
    starts = [base + draw.uniform(0, 300 * 86_400) for _ in range(operations)]
    budgets = [draw.uniform(0, 40 * 3600) for _ in range(operations)]
    calendar.add_seconds(starts[0], 1.0)  # build the timeline outside the timing
    calendar.add_seconds(max(starts), 60 * 86_400.0)
    began = time.perf_counter()
    for start, budget in zip(starts, budgets, strict=True):
        calendar.add_seconds(start, budget)
    add_rate = operations / (time.perf_counter() - began)
    began = time.perf_counter()
    for start, budget in zip(starts, budgets, strict=True):
        calendar.seconds_between(start, start + budget)
    between_rate = operations / (time.perf_counter() - began)
    instants = [datetime.fromtimestamp(start, UTC) for start in starts[: operations // 4]]
    spans = [timedelta(seconds=budget) for budget in budgets[: operations // 4]]
    began = time.perf_counter()
    for instant, span in zip(instants, spans, strict=True):
        calendar.add(instant, span)
    datetime_rate = len(instants) / (time.perf_counter() - began)
    return {
        "business_time_add_ops_per_second": round(add_rate),
        "business_time_between_ops_per_second": round(between_rate),
        "business_time_datetime_add_ops_per_second": round(datetime_rate),
    }


def recompute_rate(tickets: int) -> dict[str, float]:
    new_york, berlin = _calendars()
    generator = np.random.default_rng(7)
    now = datetime(2026, 6, 15, 14, 0, tzinfo=UTC).timestamp()
    running_since = now - generator.uniform(0, 14 * 86_400, tickets)
    targets = generator.choice(np.array([1800.0, 3600.0, 4 * 3600.0, 8 * 3600.0, 24 * 3600.0]), tickets)
    elapsed = targets * generator.uniform(0, 0.9, tickets)
    remaining = targets - elapsed
    calendar_index = generator.choice(np.array([-1, 0, 1], dtype=np.int64), tickets, p=[0.3, 0.5, 0.2])
    calendars = {0: new_york, 1: berlin}
    recompute(running_since[:1000].copy(), remaining[:1000].copy(), calendar_index[:1000], calendars, now)
    began = time.perf_counter()
    state = recompute(running_since, remaining, calendar_index, calendars, now)
    seconds = time.perf_counter() - began
    return {
        "sla_tickets": tickets,
        "sla_recompute_seconds": round(seconds, 3),
        "sla_recompute_tickets_per_second": round(tickets / seconds),
        "sla_breached_share": round(float(state.breached.mean()), 4),
    }


def database_rate(rows: int) -> dict[str, float]:
    from sqlalchemy import insert

    from opsdesk import migrate
    from opsdesk.db import Database
    from opsdesk.sla.bulk import recompute_active_targets
    from opsdesk.sla.models import BusinessCalendarRow, SlaTarget
    from opsdesk.tickets.models import Person, Ticket

    with tempfile.TemporaryDirectory(prefix="opsdesk-bench-sla-") as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        migrate.upgrade(url)
        database = Database(url)
        try:
            now = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)
            with database.transaction() as session:
                session.add(
                    BusinessCalendarRow(
                        name="NY",
                        time_zone="America/New_York",
                        is_default=True,
                        hours={day: [["09:00", "17:00"]] for day in WEEKDAYS},
                        holiday_country="US",
                        closed_dates=[],
                    )
                )
                person = Person(name="Bench")
                session.add(person)
                session.flush()
                session.execute(
                    insert(Ticket),
                    [
                        {
                            "subject": f"t{number}",
                            "requester_id": person.id,
                            "reply_token": f"{number:032x}",
                            "created_at": now,
                            "updated_at": now,
                            "status_changed_at": now,
                            "custom_fields": {},
                        }
                        for number in range(rows)
                    ],
                )
                session.execute(
                    insert(SlaTarget),
                    [
                        {
                            "ticket_id": number + 1,
                            "metric": "resolution",
                            "cycle": 1,
                            "policy_name": "Bench",
                            "business_hours": number % 3 != 0,
                            "pause_on_hold": False,
                            "target_seconds": 14_400,
                            "status": "active",
                            "started_at": now - timedelta(minutes=number % 5000),
                            "running_since": now - timedelta(minutes=number % 5000),
                            "elapsed_seconds": 0.0,
                            "updated_at": now,
                        }
                        for number in range(rows)
                    ],
                )
            began = time.perf_counter()
            with database.transaction() as session:
                updated = recompute_active_targets(session)
            seconds = time.perf_counter() - began
        finally:
            database.dispose()
    return {"database_targets": updated, "database_recompute_rows_per_second": round(updated / seconds)}


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("sla")
    def sla(
        tickets: Annotated[int, typer.Option(help="Open tickets whose SLA state is recomputed.")] = 1_000_000,
        operations: Annotated[int, typer.Option(help="Business-time operations timed.")] = 200_000,
        database_rows: Annotated[
            int, typer.Option(help="Also recompute this many targets stored in SQLite (0: skip).")
        ] = 50_000,
    ) -> None:
        """Time business-time math and the SLA recomputation for many open tickets."""
        result: dict[str, object] = {"bench": "sla"}
        result.update(business_time_rates(operations))
        result.update(recompute_rate(tickets))
        if database_rows > 0:
            result.update(database_rate(database_rows))
        typer.echo(orjson.dumps(result).decode())
