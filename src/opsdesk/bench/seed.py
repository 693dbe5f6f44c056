"""``opsdesk bench seed``: how fast the demo seeder writes tickets (with their messages, tags and
audit rows) into a fresh SQLite file and a fresh PostgreSQL database. Prints one JSON object."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

DEFAULT_POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _measure(url: str, tickets: int, days: int) -> dict[str, Any]:
    from opsdesk.demo.cli import seed_database

    count, messages, seconds = seed_database(url, tickets, days, 1)
    return {
        "tickets": count,
        "messages": messages,
        "seconds": round(seconds, 3),
        "tickets_per_second": round(count / seconds),
        "messages_per_second": round(messages / seconds),
    }


def _postgres(admin_url: str, tickets: int, days: int) -> dict[str, Any]:
    import psycopg

    name = f"opsdesk_bench_seed_{uuid.uuid4().hex[:8]}"
    admin_dsn = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
        return _measure(url, tickets, days)
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
    ) -> None:
        """Seeding rate (tickets/s with messages) on SQLite and PostgreSQL."""
        result: dict[str, Any] = {"benchmark": "seed", "tickets": tickets, "days": days}
        with tempfile.TemporaryDirectory(prefix="opsdesk-bench-seed-") as directory:
            result["sqlite"] = _measure(f"sqlite:///{Path(directory) / 'seed.db'}", tickets, days)
        if not skip_postgres:
            result["postgresql"] = _postgres(postgres_admin_url, tickets, days)
        typer.echo(json.dumps(result))
