"""``opsdesk seed`` and ``opsdesk demo``: a seeded company in any database, or a fresh demo served
on loopback with a known login."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import update

from opsdesk.config import Settings

DEMO_EMAIL = "admin@example.com"
DEMO_PASSWORD = "opsdesk-demo"  # noqa: S105 - the documented login of the local demo
DEMO_TICKETS = 10_000
DEMO_DAYS = 90


@dataclass(frozen=True, slots=True)
class SeedRun:
    tickets: int
    messages: int
    # Everything, commit included; and the company + tickets load alone (no domain seeds).
    seconds: float
    core_seconds: float
    domain_seconds: dict[str, float]

    @property
    def tickets_per_second(self) -> float:
        return self.tickets / max(self.core_seconds, 1e-9)


DbOption = Annotated[
    str | None,
    typer.Option("--db", "--database-url", help="Database URL (default: SQLite in the data directory)."),
]


def _settings(database_url: str | None) -> Settings:
    overrides: dict[str, object] = {}
    if database_url:
        overrides["database_url"] = database_url
    return Settings(**overrides)  # type: ignore[arg-type]


def seed_database(url: str, tickets: int, days: int, seed: int, *, with_domains: bool = True) -> SeedRun:
    """Migrate and seed the database at ``url``."""
    from opsdesk import migrate
    from opsdesk.db import Database
    from opsdesk.demo.bulk import load_transaction
    from opsdesk.demo.context import SeedOptions
    from opsdesk.demo.seeder import seed_company, validate_options

    options = SeedOptions(tickets=tickets, days=days, seed=seed, with_domains=with_domains)
    validate_options(options)
    migrate.upgrade(url)
    database = Database(url)
    try:
        started = time.perf_counter()
        with load_transaction(database) as session:
            context = seed_company(session, options)
        return SeedRun(
            tickets=len(context.ticket_ids),
            messages=context.message_count,
            seconds=time.perf_counter() - started,
            core_seconds=context.core_seconds,
            domain_seconds=dict(context.domain_seconds),
        )
    finally:
        database.dispose()


def create_demo_login(url: str) -> None:
    """The demo admin, and the same password on every seeded staff member so each role can be tried."""
    from opsdesk.auth import service as auth_service
    from opsdesk.auth.actor import Actor
    from opsdesk.auth.models import User
    from opsdesk.db import Database
    from opsdesk.demo.texts import STAFF_DOMAIN

    database = Database(url)
    try:
        with database.transaction() as session:
            admin = auth_service.create_user(
                session,
                Actor.system("Demo setup", via="cli"),
                email=DEMO_EMAIL,
                name="Demo Admin",
                role="admin",
                password=DEMO_PASSWORD,
            )
            session.execute(
                update(User)
                .where(User.email.like(f"%@{STAFF_DOMAIN}"))
                .values(password_hash=admin.password_hash)
            )
    finally:
        database.dispose()


def register(app: typer.Typer) -> None:
    @app.command()
    def seed(
        tickets: Annotated[int, typer.Option(help="How many tickets to make.")] = 2_000,
        days: Annotated[int, typer.Option(help="Spread them over this many days, ending now.")] = 90,
        seed: Annotated[
            int, typer.Option("--seed", help="Random seed: the same seed makes the same data.")
        ] = 1,
        domains: Annotated[
            bool, typer.Option("--domains/--no-domains", help="Also seed the other domains' demo data.")
        ] = True,
        db: DbOption = None,
    ) -> None:
        """Seed a believable SaaS company (staff, accounts, people, tickets) into an empty database."""
        settings = _settings(db)
        settings.ensure_dirs()
        run = seed_database(settings.resolved_database_url, tickets, days, seed, with_domains=domains)
        typer.echo(
            f"seeded {run.tickets} tickets with {run.messages} messages in {run.seconds:.1f} s "
            f"(company and tickets {run.core_seconds:.1f} s, {run.tickets_per_second:,.0f} tickets/s; "
            f"other domains' demo data {sum(run.domain_seconds.values()):.1f} s)"
        )

    @app.command()
    def demo(
        port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        db: DbOption = None,
        tickets: Annotated[int, typer.Option(help="How many tickets to seed.")] = DEMO_TICKETS,
    ) -> None:
        """A fresh demo: new SQLite database, seeded company, demo login, then serve."""
        from opsdesk import server

        settings = _settings(db)
        settings.ensure_dirs()
        if db is None:
            # The demo owns its file: start it fresh every time, next to (never over) opsdesk.db.
            path = (settings.data_dir / "demo.db").resolve()
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
            settings = settings.model_copy(update={"database_url": f"sqlite:///{path}"})
        url = settings.resolved_database_url
        typer.echo(f"seeding {tickets} tickets over {DEMO_DAYS} days …")
        run = seed_database(url, tickets, DEMO_DAYS, 1)
        create_demo_login(url)
        typer.echo(f"seeded {run.tickets} tickets and {run.messages} messages in {run.seconds:.1f} s")
        typer.echo(f"opsdesk demo at http://{host}:{port}/")
        typer.echo(f"log in as {DEMO_EMAIL} / {DEMO_PASSWORD}")
        server.run(settings, host=host, port=port)
