"""``opsdesk bench seed``: how fast the demo seeder writes tickets (with their messages, tags and
audit rows) into a fresh SQLite file and a fresh PostgreSQL database. Prints one JSON object."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _measure(url: str, tickets: int, days: int, with_domains: bool) -> dict[str, Any]:
    from opsdesk.demo.cli import seed_database

    # The machine's load around the run: on a shared machine the rate depends on it.
    load_before = [round(value, 2) for value in os.getloadavg()]
    run = seed_database(url, tickets, days, 1, with_domains=with_domains)
    return {
        "load_average_before": load_before,
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "tickets": run.tickets,
        "messages": run.messages,
        # The company, people and tickets with messages, tags and audit rows, indexes and the
        # search index rebuilt: what the >= 20,000 tickets/s figure is about.
        "core_seconds": round(run.core_seconds, 3),
        "tickets_per_second": round(run.tickets_per_second),
        "messages_per_second": round(run.messages / max(run.core_seconds, 1e-9)),
        # Other domains' demo data (plans, invoices...; only with --domains), measured apart.
        "domain_seconds": run.domain_seconds,
        "total_seconds": round(run.seconds, 3),
    }


def _postgres(admin_url: str, tickets: int, days: int, with_domains: bool) -> dict[str, Any]:
    import psycopg

    name = f"opsdesk_bench_seed_{uuid.uuid4().hex[:8]}"
    admin_dsn = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
        return _measure(url, tickets, days, with_domains)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("seed")
    def bench_seed(
        tickets: Annotated[int, typer.Option(help="Tickets to seed on each database.")] = 100_000,
        days: Annotated[int, typer.Option(help="Days the tickets are spread over.")] = 90,
        postgres_admin_url: Annotated[
            str, typer.Option(help="A PostgreSQL URL allowed to create and drop a scratch database.")
        ] = DEFAULT_POSTGRES_ADMIN,
        skip_postgres: Annotated[bool, typer.Option("--skip-postgres", help="Only measure SQLite.")] = False,
        domains: Annotated[
            bool, typer.Option("--domains/--no-domains", help="Also run the other domains' seed functions.")
        ] = False,
    ) -> None:
        """Seeding rate (tickets/s with messages) on SQLite and PostgreSQL."""
        result: dict[str, Any] = {"benchmark": "seed", "tickets": tickets, "days": days, "domains": domains}
        with tempfile.TemporaryDirectory(prefix="opsdesk-bench-seed-") as directory:
            result["sqlite"] = _measure(f"sqlite:///{Path(directory) / 'seed.db'}", tickets, days, domains)
        if not skip_postgres:
            result["postgresql"] = _postgres(postgres_admin_url, tickets, days, domains)
        typer.echo(json.dumps(result))
