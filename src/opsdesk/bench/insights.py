"""``opsdesk bench insights``: the weekly review, 90-day metric series and the PDF report on a
large history.

Loads a synthetic year of history (:mod:`opsdesk.insights.bulk_history`) into the database until
it holds ``--tickets`` tickets (a fresh SQLite file by default), rebuilds the daily rollups when
it loaded anything (``rollup_rebuild_s``; otherwise the incremental refresh brings them up to
date untimed), then times: the weekly ops
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
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

from opsdesk import clock, migrate
from opsdesk.auth.actor import Actor
from opsdesk.db import Database
from opsdesk.insights import report
from opsdesk.insights.bulk_history import load
from opsdesk.insights.definitions import METRICS
from opsdesk.insights.enums import Dimension, Grain
from opsdesk.insights.service import rollups
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
    load_seconds = load_cpu = 0.0
    loaded: dict[str, int] = {}
    loaded_now = present < tickets
    if loaded_now:
        started, cpu = time.perf_counter(), time.process_time()
        with database.engine.begin() as connection, Session(bind=connection) as session:
            backend_before = _connection_backend_cpu(connection)
            history = load(session, tickets - present, end=now)
            load_backend = _connection_backend_cpu(connection) - backend_before
        loaded = {
            "tickets": history.tickets,
            "messages": history.messages,
            "status_events": history.events,
            "sla_targets": history.sla_targets,
        }
        with database.engine.connect() as connection:
            # Fresh planner statistics, as a maintained database has.
            connection.execute(text("ANALYZE"))
            connection.commit()
        load_seconds = time.perf_counter() - started
        load_cpu = time.process_time() - cpu + load_backend
    actor = Actor.system("bench")
    rebuild_seconds = rebuild_cpu = rollup_rows = None
    with database.transaction() as session:
        if loaded_now or rollups.built_through(session) is None:
            started, cpu = time.perf_counter(), time.process_time()
            backend_before = _backend_cpu(session)
            rollup_rows = rollups.rebuild(session, actor, now=now).rows
            rebuild_seconds = time.perf_counter() - started
            rebuild_cpu = time.process_time() - cpu + (_backend_cpu(session) - backend_before)
        else:
            rollups.refresh(session, now=now)
    week = last_complete_week(now)
    with database.transaction(write=False) as session:
        backend_before = _backend_cpu(session)
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
        pdf_times, pdf_cpu = [], []
        for _ in range(2):
            started, cpu = time.perf_counter(), time.process_time()
            pdf = report.as_pdf(weekly_review(session, actor, week))
            pdf_times.append(time.perf_counter() - started)
            pdf_cpu.append(time.process_time() - cpu)
        backend_cpu = _backend_cpu(session) - backend_before
    ordered = sorted(series_times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))][0]
    cpu_ordered = sorted(series_cpu)
    cpu_p95 = cpu_ordered[min(len(cpu_ordered) - 1, round(0.95 * (len(cpu_ordered) - 1)))]
    return {
        "tickets": total,
        "database": database.engine.dialect.name,
        "week": week,
        # Setup: the synthetic history's load (rows, indexes, search index, ANALYZE) when this run
        # loaded it, and the rollup rebuild; CPU includes PostgreSQL's backend on this machine.
        "load_s": round(load_seconds, 1),
        "load_cpu_s": round(load_cpu, 1),
        "loaded": loaded,
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
        "pdf_cpu_s": round(min(pdf_cpu), 3),
        # PostgreSQL's own CPU for all of the above (its backend process, when it runs on this
        # machine; 0 on SQLite, whose work is already in this process's CPU).
        "database_backend_cpu_s": round(backend_cpu, 3),
        "rollup_rebuild_s": None if rebuild_seconds is None else round(rebuild_seconds, 1),
        "rollup_rebuild_cpu_s": None if rebuild_cpu is None else round(rebuild_cpu, 1),
        "rollup_rows": rollup_rows,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _connection_backend_cpu(connection: Connection) -> float:
    if connection.dialect.name != "postgresql":
        return 0.0
    return _pid_cpu(connection.scalar(text("SELECT pg_backend_pid()")))


def _backend_cpu(session: Session) -> float:
    """CPU seconds (user + system) of this session's PostgreSQL backend, read from /proc when
    the server runs on this machine; 0.0 on SQLite or when it cannot be read."""
    return _connection_backend_cpu(session.connection())


def _pid_cpu(pid: object) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
