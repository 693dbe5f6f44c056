"""The ``opsdesk`` command: serve, migrate, and every domain's commands.

Each domain may add commands through ``opsdesk.<domain>.cli.register(app)``; benchmarks live in
``opsdesk.bench`` and register under ``opsdesk bench``. Errors print one line, not a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from opsdesk.config import Settings
from opsdesk.domains import domain_modules
from opsdesk.errors import DomainError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="opsdesk: customer operations in one product."
)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: each prints one JSON object.")
app.add_typer(bench_app, name="bench")


class CliError(Exception):
    """A one-line reason for the user."""


def settings_for(database_url: str | None = None, data_dir: Path | None = None) -> Settings:
    overrides: dict[str, object] = {}
    if database_url:
        overrides["database_url"] = database_url
    if data_dir:
        overrides["data_dir"] = data_dir
    return Settings(**overrides)  # type: ignore[arg-type]


DbOption = Annotated[
    str | None,
    typer.Option("--db", "--database-url", help="Database URL (default: SQLite in the data directory)."),
]


@app.command()
def migrate(db: DbOption = None) -> None:
    """Upgrade the database to the newest schema."""
    from opsdesk import migrate as migrations

    settings = settings_for(db)
    settings.ensure_dirs()
    migrations.upgrade(settings.resolved_database_url)
    typer.echo(f"database at newest schema: {_redact(settings.resolved_database_url)}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    db: DbOption = None,
    no_migrate: Annotated[
        bool, typer.Option("--no-migrate", help="Do not upgrade the database on start.")
    ] = False,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    smtp_port: Annotated[
        int | None,
        typer.Option("--smtp-port", help="Also receive email over SMTP on this port (0: any free port)."),
    ] = None,
) -> None:
    """Serve the web UI and API (and run background jobs in-process)."""
    from opsdesk import server

    settings = settings_for(db)
    server.run(
        settings, host=host, port=port, migrate_first=not no_migrate, workers=workers, smtp_port=smtp_port
    )


@app.command()
def worker(
    db: DbOption = None,
    once: Annotated[bool, typer.Option("--once", help="Run what is due now, then exit.")] = False,
    concurrency: Annotated[int, typer.Option(help="Jobs run at the same time.")] = 8,
    batch_size: Annotated[int, typer.Option(help="Jobs claimed per round.")] = 100,
    lease_seconds: Annotated[
        float, typer.Option(help="How long a claimed job is ours before another worker may take it.")
    ] = 300.0,
    poll_seconds: Annotated[float, typer.Option(help="Pause between polls when idle.")] = 1.0,
) -> None:
    """Run background jobs alone (several workers may share one database and Redis broker)."""
    from datetime import timedelta

    from opsdesk.jobs.process import run_worker
    from opsdesk.jobs.runner import RunnerOptions

    if concurrency < 1 or batch_size < 1 or lease_seconds <= 0 or poll_seconds <= 0:
        raise CliError("--concurrency, --batch-size, --lease-seconds and --poll-seconds must be positive")
    options = RunnerOptions(
        batch_size=batch_size,
        concurrency=concurrency,
        lease=timedelta(seconds=lease_seconds),
        poll_seconds=poll_seconds,
    )
    settings = settings_for(db)
    ran = run_worker(settings, options=options, once=once)
    if once:
        typer.echo(f"ran {ran} jobs")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _register_domain_commands() -> None:
    from opsdesk.demo import cli as demo_cli

    demo_cli.register(app)
    for module in domain_modules("cli"):
        module.register(app)
    import importlib
    import pkgutil

    import opsdesk.bench as bench_package

    for info in pkgutil.iter_modules(bench_package.__path__):
        module = importlib.import_module(f"opsdesk.bench.{info.name}")
        if hasattr(module, "register"):
            module.register(bench_app)


def main() -> None:
    _register_domain_commands()
    try:
        app(standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except CliError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(1)
    except DomainError as error:
        typer.echo(
            f"error: {error.detail}"
            + "".join(f"; {'.'.join(map(str, f.location))}: {f.message}" for f in error.fields),
            err=True,
        )
        sys.exit(1)
    except OperationalError as error:
        typer.echo(f"error: cannot reach the database: {str(error.orig).strip().splitlines()[0]}", err=True)
        sys.exit(1)
    except SQLAlchemyError as error:
        typer.echo(f"error: database error: {str(error).splitlines()[0]}", err=True)
        sys.exit(1)
    except Exception as error:  # a click usage error or a bad value: one line, no traceback
        # Typer ships its own copy of click (typer._click) besides the click package, so the
        # error classes are recognised by what they are, not by which module defined them.
        if _is_click_error(error, "ClickException"):
            typer.echo(f"error: {error.format_message()}", err=True)  # type: ignore[attr-defined]
            sys.exit(2)
        if _is_click_error(error, "Exit"):
            sys.exit(error.exit_code)  # type: ignore[attr-defined]
        raise


def _is_click_error(error: Exception, class_name: str) -> bool:
    return any(
        cls.__name__ == class_name and cls.__module__.endswith("click.exceptions")
        for cls in type(error).__mro__
    )
