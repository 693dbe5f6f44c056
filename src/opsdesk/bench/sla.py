"""``opsdesk bench sla``: business-time math and SLA state for a million open tickets.

- business-time operations per second: ``add`` and ``between`` on a weekday 09:00-17:00 New York
  calendar with US holidays, as epoch-second calls (what the clocks use in bulk) and as the
  datetime API (what one event uses);
- SLA state (due time, breached, time left) for ``--tickets`` open tickets recomputed at once:
  targets spread over the last two weeks, a mix of business-hours (two calendars) and calendar
  time, vectorized with numpy (:mod:`opsdesk.sla.bulk`);
- the real path (``--database-tickets``, a million by default): that many open tickets and their
  targets seeded in a fresh SQLite file (or the empty database ``--database-url``); targets
  already past due are seeded breached, as the minute sweep would have left them. Then the New
  York calendar is edited three times and :func:`opsdesk.sla.bulk.recompute_due_times` is timed
  whole each time (load from the database, compute, write back the due times that moved; wall
  and CPU seconds): a closed day, new opening hours (both over every active target), and another
  closed day recomputed only for that calendar's targets (what the job after an edit does).
Prints one JSON object.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import numpy as np
import numpy.typing as npt
import orjson
import typer

from opsdesk.db import Database
from opsdesk.sla.bulk import recompute
from opsdesk.sla.business_time import BusinessCalendar, format_hours, parse_hours

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


def _seed(database: Database, tickets: int, now: datetime) -> tuple[int, int]:
    """``tickets`` open tickets with their active targets (resolution for each, first reply for a
    third; half on the New York calendar, a fifth on Berlin, the rest in calendar time), due
    times as the per-ticket path would have stored them. Returns the two calendar ids."""
    from sqlalchemy import text

    from opsdesk.demo.bulk import BulkWriter
    from opsdesk.sla.bulk import due_microseconds
    from opsdesk.sla.models import BusinessCalendarRow
    from opsdesk.tickets.models import Person
    from opsdesk.tickets.service import search

    new_york, berlin = _calendars()
    with database.transaction() as session:
        rows = [
            BusinessCalendarRow(
                name=name,
                time_zone=calendar.time_zone,
                is_default=name == "New York",
                hours=format_hours(calendar.weekly),
                holiday_country=calendar.holiday_country,
                closed_dates=[],
            )
            for name, calendar in (("New York", new_york), ("Berlin", berlin))
        ]
        session.add_all(rows)
        person = Person(name="Bench")
        session.add(person)
        session.flush()
        calendar_ids = (rows[0].id, rows[1].id)
        requester_id = person.id
    generator = np.random.default_rng(11)
    now_us = int(now.timestamp() * 1_000_000)
    calendars = {calendar_ids[0]: new_york, calendar_ids[1]: berlin}
    with database.transaction() as session:
        writer = BulkWriter(session)
        sqlite = writer.dialect == "sqlite"
        stamp = _times(np.array([now_us], dtype=np.int64), sqlite)[0]
        true, false = (1, 0) if sqlite else (True, False)
        next_target = 1
        # As the demo seeder loads: a big page cache, the search index rebuilt once at the end,
        # secondary indexes built after the rows.
        with (
            writer.bulk_load_tuning(),
            search.suspended_index(session),
            writer.without_indexes(["tickets", "sla_targets"]),
        ):
            for first in range(1, tickets + 1, 50_000):
                ticket_ids = np.arange(first, min(first + 50_000, tickets + 1), dtype=np.int64)
                count = ticket_ids.size
                writer.insert(
                    "tickets",
                    TICKET_COLUMNS,
                    [
                        (
                            number,
                            f"Bench ticket {number}",
                            "open",
                            "normal",
                            "question",
                            "api",
                            requester_id,
                            "{}",
                            f"{number:032x}",
                            stamp,
                            stamp,
                            stamp,
                            0,
                            0,
                            0,
                            0,
                        )
                        for number in ticket_ids.tolist()
                    ],
                )
                first_reply = generator.random(count) < 1 / 3
                target_ticket = np.concatenate([ticket_ids, ticket_ids[first_reply]])
                metric = ["resolution"] * count + ["first_reply"] * int(first_reply.sum())
                size = target_ticket.size
                since_us = now_us - (generator.uniform(0, 3 * 86_400, size) * 1e6).astype(np.int64)
                # First reply 1 to 8 hours; resolution 8 to 40 (business) hours, or 1 to 5 days.
                reply = generator.choice(np.array([3600, 2 * 3600, 4 * 3600, 8 * 3600]), size)
                resolve = generator.choice(np.array([8 * 3600, 16 * 3600, 24 * 3600, 40 * 3600]), size)
                is_reply = np.arange(size) >= count
                target_seconds = np.where(is_reply, reply, resolve)
                elapsed = np.round(target_seconds * generator.uniform(0, 0.5, size), 3)
                choice = generator.choice(np.array([0, 1, -1], dtype=np.int64), size, p=[0.5, 0.2, 0.3])
                calendar_key = np.where(choice >= 0, np.array(calendar_ids)[np.clip(choice, 0, 1)], -1)
                target_seconds = np.where((calendar_key < 0) & ~is_reply, target_seconds * 3, target_seconds)
                due_us = due_microseconds(since_us, target_seconds - elapsed, calendar_key, calendars)
                since_text = _times(since_us, sqlite)
                due_text = _times(due_us, sqlite)
                writer.insert(
                    "sla_targets",
                    TARGET_COLUMNS,
                    [
                        (
                            next_target + offset,
                            ticket_id,
                            name,
                            1,
                            "policy",
                            "Bench",
                            key if key >= 0 else None,
                            true if key >= 0 else false,
                            false,
                            seconds,
                            "breached" if late else "active",
                            since,
                            since,
                            used,
                            due,
                            due if late else None,
                            stamp,
                        )
                        for offset, (ticket_id, name, key, seconds, since, used, due, late) in enumerate(
                            zip(
                                target_ticket.tolist(),
                                metric,
                                calendar_key.tolist(),
                                target_seconds.tolist(),
                                since_text,
                                elapsed.tolist(),
                                due_text,
                                (due_us <= now_us).tolist(),
                                strict=True,
                            )
                        )
                    ],
                )
                next_target += size
        writer.move_sequence("tickets")
        writer.move_sequence("sla_targets")
    if not sqlite:
        # Planner statistics for the loaded tables, as autovacuum would soon gather them.
        with database.transaction() as session:
            session.execute(text("ANALYZE tickets, sla_targets"))
    return calendar_ids


TICKET_COLUMNS = (
    "id",
    "subject",
    "status",
    "priority",
    "type",
    "channel",
    "requester_id",
    "custom_fields",
    "reply_token",
    "created_at",
    "updated_at",
    "status_changed_at",
    "reopened_count",
    "staff_public_reply_count",
    "customer_message_count",
    "handle_seconds",
)
TARGET_COLUMNS = (
    "id",
    "ticket_id",
    "metric",
    "cycle",
    "kind",
    "policy_name",
    "calendar_id",
    "business_hours",
    "pause_on_hold",
    "target_seconds",
    "status",
    "started_at",
    "running_since",
    "elapsed_seconds",
    "due_at",
    "breached_at",
    "updated_at",
)


def _times(microseconds: npt.NDArray[np.int64], sqlite: bool) -> list[str]:
    """Instants in each database's text form (SQLite: SQLAlchemy's storage format)."""
    values = np.datetime_as_string(microseconds.astype("datetime64[us]"), unit="us").tolist()
    suffix = "" if sqlite else "+00"
    return [value.replace("T", " ") + suffix for value in values]


def database_recompute(tickets: int, database_url: str | None) -> dict[str, object]:
    """The real path: open tickets and their targets stored in the database, a calendar edited,
    then every active target's due time recomputed from the database and written back where it
    moved (load + compute + write, one transaction), timed in wall and CPU seconds."""
    from sqlalchemy import func, select

    from opsdesk import migrate
    from opsdesk.sla.bulk import RecomputeResult, recompute_due_times
    from opsdesk.sla.models import BusinessCalendarRow, SlaTarget

    with tempfile.TemporaryDirectory(prefix="opsdesk-bench-sla-") as directory:
        url = database_url or f"sqlite:///{Path(directory) / 'bench.db'}"
        migrate.upgrade(url)
        database = Database(url)
        try:
            with database.transaction() as session:
                if session.scalar(select(func.count()).select_from(SlaTarget)):
                    raise typer.BadParameter("the bench database must be empty (it seeds its own tickets)")
            now = datetime(2026, 6, 15, 14, 0, tzinfo=UTC)
            began = time.perf_counter()
            calendar_ids = _seed(database, tickets, now)
            seed_seconds = time.perf_counter() - began
            # A calendar edit: New York closes next Thursday (an office move). Then its hours change
            # (opening an hour earlier), which moves nearly every New York target.
            # Last, what the job queued by a calendar edit does: only that calendar's targets.
            edits: dict[str, tuple[dict[str, object], list[int] | None]] = {
                "holiday": ({"closed_dates": ["2026-06-18"]}, None),
                "hours": ({"hours": {day: [["08:00", "17:00"]] for day in WEEKDAYS}}, None),
                "scoped": ({"closed_dates": ["2026-06-18", "2026-06-26"]}, [calendar_ids[0]]),
            }
            timings: dict[str, tuple[RecomputeResult, float, float]] = {}
            for edit, (values, scope) in edits.items():
                with database.transaction() as session:
                    row = session.get_one(BusinessCalendarRow, calendar_ids[0])
                    for key, value in values.items():
                        setattr(row, key, value)
                began = time.perf_counter()
                cpu = time.process_time()
                with database.transaction() as session:
                    result = recompute_due_times(session, now=now, calendar_ids=scope)
                timings[edit] = (result, time.perf_counter() - began, time.process_time() - cpu)
        finally:
            database.dispose()
    output: dict[str, object] = {
        "database": "sqlite" if database_url is None or database_url.startswith("sqlite") else "postgresql",
        "database_open_tickets": tickets,
        "database_seed_seconds": round(seed_seconds, 1),
    }
    for edit, (result, seconds, cpu_seconds) in timings.items():
        prefix = {
            "holiday": "database_recompute",
            "hours": "database_recompute_hours_edit",
            "scoped": "database_recompute_one_calendar",
        }[edit]
        output |= {
            f"{prefix}_targets": result.targets,
            f"{prefix}_changed": result.changed,
            f"{prefix}_due_now": result.due_now,
            f"{prefix}_seconds": round(seconds, 3),
            f"{prefix}_cpu_seconds": round(cpu_seconds, 3),
            f"{prefix}_load_compute_write_seconds": [
                round(result.load_seconds, 3),
                round(result.compute_seconds, 3),
                round(result.write_seconds, 3),
            ],
        }
    return output


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("sla")
    def sla(
        tickets: Annotated[int, typer.Option(help="Open tickets whose SLA state is recomputed.")] = 1_000_000,
        operations: Annotated[int, typer.Option(help="Business-time operations timed.")] = 200_000,
        database_tickets: Annotated[
            int,
            typer.Option(help="Open tickets seeded in the database and recomputed from it (0: skip)."),
        ] = 1_000_000,
        database_url: Annotated[
            str | None,
            typer.Option(help="An empty database to seed (default: a fresh SQLite file)."),
        ] = None,
        in_memory: Annotated[bool, typer.Option(help="Also time the in-memory recompute alone.")] = True,
    ) -> None:
        """Time business-time math and the SLA recompute for many open tickets, from the database."""
        result: dict[str, object] = {"bench": "sla"}
        result.update(business_time_rates(operations))
        if in_memory:
            result.update(recompute_rate(tickets))
        if database_tickets > 0:
            result.update(database_recompute(database_tickets, database_url))
        # The machine may be shared: wall times vary with it, CPU seconds much less.
        result |= {"cpu_count": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}
        typer.echo(orjson.dumps(result).decode())
