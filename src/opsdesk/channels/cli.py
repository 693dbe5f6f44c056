"""``opsdesk channels …``: poll IMAP mailboxes, add one, print the inbound email key."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from opsdesk.auth.actor import Actor


def register(app: typer.Typer) -> None:
    channels = typer.Typer(no_args_is_help=True, help="Email and other channels.")
    app.add_typer(channels, name="channels")

    @channels.command("poll-imap")
    def poll_imap(
        db: Annotated[str | None, typer.Option("--db", help="Database URL.")] = None,
        watch: Annotated[int | None, typer.Option(help="Keep watching this mailbox id (IDLE).")] = None,
    ) -> None:
        """Take new mail from every active IMAP mailbox (or watch one with IDLE)."""
        from opsdesk.channels.imap_polling import poll_all, watch_mailbox
        from opsdesk.cli import settings_for
        from opsdesk.db import Database

        settings = settings_for(db)
        database = Database(settings.resolved_database_url)
        if watch is not None:
            watch_mailbox(database, settings, watch)
            return
        for result in poll_all(database, settings):
            typer.echo(
                json.dumps(
                    {"mailbox": result.mailbox, "fetched": result.fetched, "duplicates": result.duplicates}
                )
            )

    @channels.command("add-mailbox")
    def add_mailbox(
        name: str,
        host: str,
        username: str,
        password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
        port: int = 993,
        security: str = "tls",
        folder: str = "INBOX",
        db: Annotated[str | None, typer.Option("--db", help="Database URL.")] = None,
    ) -> None:
        """Add an IMAP mailbox to poll."""
        from opsdesk.channels.service.mailboxes import add_imap_mailbox
        from opsdesk.cli import settings_for
        from opsdesk.db import Database

        database = Database(settings_for(db).resolved_database_url)
        with database.transaction() as session:
            mailbox = add_imap_mailbox(
                session,
                Actor.system("cli"),
                name=name,
                host=host,
                port=port,
                username=username,
                password=password,
                security=security,
                folder=folder,
            )
            typer.echo(f"mailbox {mailbox.id} added: {name}")

    @channels.command("inbound-key")
    def inbound_key() -> None:
        """The key mail providers' inbound webhooks send to POST /api/v1/channels/email/inbound."""
        from opsdesk.channels.inbound_keys import inbound_email_key
        from opsdesk.config import Settings

        typer.echo(inbound_email_key(Settings().secret_key))
