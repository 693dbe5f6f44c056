"""``opsdesk bench insights``: the weekly review, 90-day metric series and the PDF report on a
large history.

Loads a synthetic year of history (:mod:`opsdesk.insights.bulk_history`) into the database until
it holds ``--tickets`` tickets (a fresh SQLite file by default), then times: the weekly ops
review of the last complete week (median of 3), every available metric as a 90-day daily series,
overall and by group, channel, vendor and tier (p95 and max over those series), and the PDF
report (review + render). Prints one JSON object.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from sqlalchemy import func, select, text

from opsdesk import clock, migrate
from opsdesk.auth.actor import Actor
from opsdesk.db import Database
from opsdesk.insights import report
from opsdesk.insights.bulk_history import load
from opsdesk.insights.definitions import METRICS
from opsdesk.insights.enums import Dimension, Grain
from opsdesk.insights.service.series import MetricQuery, compute_series
from opsdesk.insights.service.weekly_review import last_complete_week, weekly_review
from opsdesk.tickets.models import Ticket

SERIES_DIMENSIONS = (None, Dimension.GROUP, Dimension.CHANNEL, Dimension.VENDOR, Dimension.TIER)


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("insights")
    def insights(
        tickets: Annotated[int, typer.Option(help="Tickets the database should hold.")] = 100_000,
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", "--db", help="Database (default: a fresh SQLite file)."),
        ] = None,
    ) -> None:
        """Time the weekly review, 90-day metric series and the PDF report."""
        directory = None
        if database_url is None:
            directory = tempfile.TemporaryDirectory(prefix="opsdesk-bench-insights-")
            database_url = f"sqlite:///{Path(directory.name) / 'bench.db'}"
        migrate.upgrade(database_url)
        database = Database(database_url)
        try:
            typer.echo(orjson.dumps(run(database, tickets)).decode())
        finally:
            database.dispose()
            if directory is not None:
                directory.cleanup()


def run(database: Database, tickets: int) -> dict[str, object]:
    now = clock.now().replace(minute=0, second=0, microsecond=0)
    with database.transaction() as session:
        present = session.scalar(select(func.count()).select_from(Ticket)) or 0
    load_seconds = 0.0
    if present < tickets:
        started = time.perf_counter()
        with database.engine.begin() as connection:
            load(connection, tickets - present, end=now)
        with database.engine.connect() as connection:
            # Fresh planner statistics, as a maintained database has.
            connection.execute(text("ANALYZE"))
            connection.commit()
        load_seconds = time.perf_counter() - started
    actor = Actor.system("bench")
    week = last_complete_week(now)
    with database.transaction(write=False) as session:
        total = session.scalar(select(func.count()).select_from(Ticket)) or 0
        weekly_review(session, actor, week)  # warm the caches
        review_times, review_cpu = [], []
        for _ in range(3):
            started, cpu = time.perf_counter(), time.process_time()
            weekly_review(session, actor, week)
            review_times.append(time.perf_counter() - started)
            review_cpu.append(time.process_time() - cpu)
        series_times: list[tuple[float, str]] = []
        series_cpu: list[float] = []
        start = now - timedelta(days=90)
        for name, definition in METRICS.items():
            if definition.unavailable is not None:
                continue
            for by in SERIES_DIMENSIONS:
                query = MetricQuery(name, start, now, by=by, grain=Grain.DAY)
                started, cpu = time.perf_counter(), time.process_time()
                compute_series(session, definition, query)
                series_times.append((time.perf_counter() - started, f"{name} by {by.value if by else 'all'}"))
                series_cpu.append(time.process_time() - cpu)
        pdf_times = []
        for _ in range(2):
            started = time.perf_counter()
            pdf = report.as_pdf(weekly_review(session, actor, week))
            pdf_times.append(time.perf_counter() - started)
    ordered = sorted(series_times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))][0]
    cpu_ordered = sorted(series_cpu)
    cpu_p95 = cpu_ordered[min(len(cpu_ordered) - 1, round(0.95 * (len(cpu_ordered) - 1)))]
    return {
        "tickets": total,
        "database": database.engine.dialect.name,
        "week": week,
        "load_s": round(load_seconds, 1),
        "weekly_review_s": round(statistics.median(review_times), 3),
        "metric_series_p95_ms": round(p95 * 1000, 1),
        "metric_series_max_ms": round(ordered[-1][0] * 1000, 1),
        "slowest_series": ordered[-1][1],
        "series_timed": len(ordered),
        "pdf_s": round(min(pdf_times), 3),
        "pdf_bytes": len(pdf),
        # This process's CPU (on SQLite that includes the database's own work) and the machine's
        # load: on a shared machine the wall times above also measure the neighbours.
        "weekly_review_cpu_s": round(statistics.median(review_cpu), 3),
        "metric_series_p95_cpu_ms": round(cpu_p95 * 1000, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
