"""``opsdesk report weekly``: the weekly ops review as HTML, PDF, Markdown or JSON; and
``opsdesk insights rollup [--rebuild]``: the daily rollups of the metric layer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from opsdesk.auth.actor import Actor


def register(app: typer.Typer) -> None:
    report_app = typer.Typer(no_args_is_help=True, help="Reports: the weekly ops review.")
    app.add_typer(report_app, name="report")

    @report_app.command("weekly")
    def weekly(
        week: Annotated[
            str | None, typer.Option(help="ISO week, e.g. 2026-W46 (default: the last complete week).")
        ] = None,
        format: Annotated[str, typer.Option("--format", help="html, pdf, md or json.")] = "md",
        output: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
        db: Annotated[str | None, typer.Option("--db", "--database-url", help="Database URL.")] = None,
    ) -> None:
        """The weekly ops review of one ISO week against the week before."""
        from opsdesk.cli import CliError, settings_for
        from opsdesk.db import Database
        from opsdesk.insights import report
        from opsdesk.insights.service.weekly_review import weekly_review

        if format not in report.FORMATS:
            raise CliError(f"--format must be one of {', '.join(report.FORMATS)}, not {format!r}")
        settings = settings_for(db)
        database = Database(settings.resolved_database_url)
        try:
            with database.transaction(write=False) as session:
                review = weekly_review(session, Actor.system("opsdesk report", via="cli"), week)
        finally:
            database.dispose()
        content: bytes
        if format == "json":
            content = orjson.dumps(report.as_json(review), option=orjson.OPT_INDENT_2) + b"\n"
        elif format == "md":
            content = report.as_markdown(review).encode()
        elif format == "html":
            content = report.as_html(review, base_url=settings.base_url).encode()
        else:
            content = report.as_pdf(review, base_url=settings.base_url)
        if output is not None:
            output.write_bytes(content)
            typer.echo(f"wrote {output} ({len(content):,} bytes)")
        else:
            sys.stdout.buffer.write(content)
            sys.stdout.flush()

    insights_app = typer.Typer(no_args_is_help=True, help="Insights: daily rollups of the metric layer.")
    app.add_typer(insights_app, name="insights")

    @insights_app.command("rollup")
    def rollup(
        rebuild: Annotated[
            bool, typer.Option("--rebuild", help="Throw the rollups away and roll up every closed day again.")
        ] = False,
        db: Annotated[str | None, typer.Option("--db", "--database-url", help="Database URL.")] = None,
    ) -> None:
        """Roll up closed days (incrementally, as the hourly job does), or rebuild them all."""
        import time

        from opsdesk.cli import settings_for
        from opsdesk.db import Database
        from opsdesk.insights.service import rollups

        settings = settings_for(db)
        database = Database(settings.resolved_database_url)
        started, cpu = time.perf_counter(), time.process_time()
        try:
            with database.transaction() as session:
                if rebuild:
                    result = rollups.rebuild(session, Actor.system("opsdesk insights rollup", via="cli"))
                else:
                    result = rollups.refresh(session)
        finally:
            database.dispose()
        typer.echo(
            orjson.dumps(
                {
                    "built_through": result.built_through,
                    "rows": result.rows,
                    "metrics": result.metrics,
                    "rebuild": rebuild,
                    "seconds": round(time.perf_counter() - started, 3),
                    "cpu_seconds": round(time.process_time() - cpu, 3),
                }
            ).decode()
        )
