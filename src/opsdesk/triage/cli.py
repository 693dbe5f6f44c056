"""``opsdesk triage …``: train a model version now (without the job runner), list versions, roll
back, and create the default taxonomy and keyword rules."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from opsdesk.auth.actor import Actor
from opsdesk.cli import DbOption, settings_for

CLI_ACTOR = Actor.system("opsdesk triage", via="cli")


def register(app: typer.Typer) -> None:
    triage_app = typer.Typer(
        no_args_is_help=True, help="Triage: train, list and roll back classifier versions."
    )
    app.add_typer(triage_app, name="triage")

    def _database(db: str | None) -> object:
        from opsdesk.db import Database

        settings = settings_for(db)
        settings.ensure_dirs()
        return Database(settings.resolved_database_url)

    @triage_app.command("train")
    def train(
        db: DbOption = None,
        kind: Annotated[
            str | None,
            typer.Option(
                help="tfidf_linear (fast) or embeddings (the cascade, needs opsdesk[embeddings]); "
                "default: embeddings where the extra is installed."
            ),
        ] = None,
        activate: Annotated[
            bool, typer.Option("--activate/--no-activate", help="Activate if it beats the rules.")
        ] = True,
        encoder: Annotated[
            str | None,
            typer.Option(help="Sentence encoder of the embeddings cascade (default all-MiniLM-L6-v2)."),
        ] = None,
    ) -> None:
        """Train a new version from tickets whose category a person set or corrected."""
        from opsdesk.db import Database
        from opsdesk.triage.service import registry

        database = _database(db)
        assert isinstance(database, Database)
        try:
            with database.transaction() as session:
                row = registry.train_model(session, CLI_ACTOR, kind=kind, activate=activate, encoder=encoder)
                summary = {
                    "version": row.version,
                    "kind": row.kind,
                    "active": row.is_active,
                    "n_train": row.n_train,
                    "accuracy": row.accuracy,
                    "macro_f1": row.macro_f1,
                    "keyword_rules_accuracy": row.baseline_accuracy,
                    "train_seconds": row.train_seconds,
                    "notes": row.notes,
                }
        finally:
            database.dispose()
        typer.echo(json.dumps(summary))

    @triage_app.command("models")
    def models(db: DbOption = None) -> None:
        """List model versions, newest first (one JSON object per line)."""
        from opsdesk.db import Database
        from opsdesk.triage.service import registry

        database = _database(db)
        assert isinstance(database, Database)
        try:
            with database.transaction(write=False) as session:
                for row in registry.list_models(session):
                    typer.echo(
                        json.dumps(
                            {
                                "version": row.version,
                                "kind": row.kind,
                                "active": row.is_active,
                                "accuracy": row.accuracy,
                                "n_train": row.n_train,
                            }
                        )
                    )
        finally:
            database.dispose()

    @triage_app.command("rollback")
    def rollback(db: DbOption = None) -> None:
        """Put the previously active version back (or the keyword rules)."""
        from opsdesk.db import Database
        from opsdesk.triage.service import registry

        database = _database(db)
        assert isinstance(database, Database)
        try:
            with database.transaction() as session:
                row = registry.rollback(session, CLI_ACTOR)
                message = (
                    f"version {row.version} is active" if row is not None else "keyword rules are active"
                )
        finally:
            database.dispose()
        typer.echo(message)

    @triage_app.command("seed")
    def seed(db: DbOption = None) -> None:
        """Create the default taxonomy, keyword rules and the needs-triage group (idempotent)."""
        from opsdesk.db import Database
        from opsdesk.triage.seed import seed_defaults

        database = _database(db)
        assert isinstance(database, Database)
        try:
            with database.transaction() as session:
                seed_defaults(session)
        finally:
            database.dispose()
        typer.echo("default taxonomy and keyword rules are in place")
