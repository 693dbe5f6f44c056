"""``opsdesk channels …``: poll IMAP mailboxes, add one, print the inbound email key, add a chat
widget brand."""

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

    @channels.command("add-chat-brand")
    def add_chat_brand(
        key: str,
        name: str,
        origin: Annotated[list[str], typer.Option("--origin", help="A site allowed to embed the widget.")],
        greeting: str = "Hi! How can we help?",
        accept_timeout: Annotated[int, typer.Option(help="Seconds a visitor waits for an agent.")] = 120,
        db: Annotated[str | None, typer.Option("--db", help="Database URL.")] = None,
    ) -> None:
        """Add a chat widget brand and the site origins allowed to embed it; prints the snippet."""
        from opsdesk.channels.service.chat import create_brand
        from opsdesk.cli import settings_for
        from opsdesk.db import Database

        settings = settings_for(db)
        database = Database(settings.resolved_database_url)
        with database.transaction() as session:
            brand = create_brand(
                session,
                Actor.system("cli"),
                key=key,
                name=name,
                allowed_origins=origin,
                greeting=greeting,
                accept_timeout_seconds=accept_timeout,
            )
            typer.echo(f"chat brand {brand.id} added: {brand.key} on {', '.join(brand.allowed_origins)}")
            typer.echo(
                f'<script src="{settings.base_url}/widget.js" data-brand="{brand.key}" async></script>'
            )
