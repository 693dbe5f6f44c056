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
            watch_mailbox(database, settings, watch)  # until interrupted (Ctrl-C)
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

        settings = settings_for(db)
        database = Database(settings.resolved_database_url)
        with database.transaction() as session:
            mailbox = add_imap_mailbox(
                session,
                Actor.system("cli"),
                settings=settings,
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

    @channels.command("seal-secret")
    def seal_secret(
        secret: Annotated[str, typer.Option(prompt=True, hide_input=True)],
        db: Annotated[str | None, typer.Option("--db", help="Database URL.")] = None,
    ) -> None:
        """Print a secret sealed with the current key (for OPSDESK_SMTP_PASSWORD=fernet:…)."""
        from opsdesk.channels.secret_box import seal
        from opsdesk.cli import settings_for

        typer.echo(seal(settings_for(db), secret))

    @channels.command("reencrypt-secrets")
    def reencrypt_secrets(
        new_key_file_key: Annotated[
            bool, typer.Option("--new-key", help="Add a new key to the key file first (key-file installs).")
        ] = False,
        db: Annotated[str | None, typer.Option("--db", help="Database URL.")] = None,
    ) -> None:
        """Re-seal every stored secret under the current key (after a key rotation)."""
        from opsdesk.channels.secret_box import add_file_key, drop_old_file_keys
        from opsdesk.channels.service.secrets import reencrypt_stored_secrets
        from opsdesk.cli import settings_for
        from opsdesk.config import DEFAULT_SECRET
        from opsdesk.db import Database

        settings = settings_for(db)
        using_file = settings.secret_key == DEFAULT_SECRET
        if new_key_file_key:
            if not using_file:
                raise typer.BadParameter(
                    "--new-key is for key-file installs; rotate OPSDESK_SECRET_KEY instead"
                )
            add_file_key(settings)
        database = Database(settings.resolved_database_url)
        with database.transaction() as session:
            count = reencrypt_stored_secrets(session, settings)
        if using_file:
            drop_old_file_keys(settings)
        typer.echo(json.dumps({"reencrypted": count}))
