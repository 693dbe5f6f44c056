"""``opsdesk user create`` and ``opsdesk token create``: staff and API tokens from the shell.

Both refuse a database that is not at the newest schema (run ``opsdesk migrate``), and fail with
one line, never a traceback, on bad arguments or an unreachable database (see ``opsdesk.cli``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from opsdesk.auth.enums import Role

DbOption = Annotated[
    str | None,
    typer.Option("--db", "--database-url", help="Database URL (default: SQLite in the data directory)."),
]


def register(app: typer.Typer) -> None:
    user_app = typer.Typer(no_args_is_help=True, help="Staff users.")
    token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")

    @user_app.command("create")
    def create_user(
        email: Annotated[str, typer.Option(help="Sign-in email.")],
        name: Annotated[str, typer.Option(help="Full name.")],
        role: Annotated[str, typer.Option(help="One of: " + ", ".join(member.value for member in Role))],
        password: Annotated[
            str | None, typer.Option(help="Password for the login form (at least 10 characters).")
        ] = None,
        db: DbOption = None,
    ) -> None:
        """Create a staff user."""
        from opsdesk.auth import service
        from opsdesk.auth.actor import Actor

        with _session(db) as session:
            user = service.create_user(
                session, Actor.system("cli", via="cli"), email=email, name=name, role=role, password=password
            )
            typer.echo(f"created user {user.id}: {user.email} ({user.role})")

    @token_app.command("create")
    def create_token(
        email: Annotated[str, typer.Option(help="Email of the user the token acts as.")],
        name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "cli",
        db: DbOption = None,
    ) -> None:
        """Issue an API token; the token is printed once, alone on the last line."""
        from opsdesk.auth import service
        from opsdesk.auth.actor import Actor

        with _session(db) as session:
            user = service.user_by_email(session, email)
            issued = service.issue_token(session, Actor.system("cli", via="cli"), user, name=name)
            typer.echo(f"token {issued.token.id} for {user.email} (shown once; store it now):")
            typer.echo(issued.secret)


@contextlib.contextmanager
def _session(database_url: str | None) -> Iterator[Session]:
    """A committed transaction on the configured database, refusing an unmigrated schema."""
    from opsdesk import migrate
    from opsdesk.cli import CliError, settings_for
    from opsdesk.db import Database

    database = Database(settings_for(database_url).resolved_database_url)
    try:
        if not migrate.is_current(database.engine):
            raise CliError("the database is not at the newest schema; run `opsdesk migrate` first")
        with database.transaction() as session:
            yield session
    finally:
        database.dispose()
