"""Secrets at rest: sealed with Fernet under a key from the settings, rotated without loss, and
the migration that seals what earlier versions stored in plain text."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from opsdesk.channels import secret_box
from opsdesk.channels.models import ImapMailbox, SlackConnection
from opsdesk.channels.service.mailboxes import add_imap_mailbox, mailbox_password
from opsdesk.channels.service.secrets import reencrypt_stored_secrets
from opsdesk.channels.service.slack import bot_token_for, connect_channel
from opsdesk.config import Settings
from opsdesk.db import make_engine
from opsdesk.migrate import upgrade
from tests.support.databases import BoundDatabase, postgres_database
from tests.support.factories import SYSTEM


def _settings(directory: Path, **values: str) -> Settings:
    return Settings(data_dir=directory, environment="test", **values)  # type: ignore[arg-type]


def test_a_key_file_is_created_once_private_and_seals(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")

    sealed = secret_box.seal(settings, "hunter2")

    key_file = tmp_path / "data" / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sealed.startswith("fernet:")
    assert "hunter2" not in sealed
    assert secret_box.reveal(settings, sealed) == "hunter2"
    assert secret_box.seal(settings, "hunter2") != sealed  # fresh IV each time
    assert len(key_file.read_bytes().splitlines()) == 1
    with pytest.raises(secret_box.SecretUnreadableError):
        secret_box.reveal(_settings(tmp_path / "other"), sealed)  # another install's key


def test_the_secret_key_rotates_through_previous_keys(tmp_path: Path) -> None:
    old = _settings(tmp_path, secret_key="old-secret-key-for-tests")
    sealed = secret_box.seal(old, "token")
    new_only = _settings(tmp_path, secret_key="new-secret-key-for-tests")
    rotating = _settings(
        tmp_path, secret_key="new-secret-key-for-tests", previous_secret_keys="old-secret-key-for-tests"
    )

    with pytest.raises(secret_box.SecretUnreadableError):
        secret_box.reveal(new_only, sealed)
    assert secret_box.reveal(rotating, sealed) == "token"
    moved = secret_box.reencrypt(rotating, sealed)
    assert secret_box.reveal(new_only, moved) == "token"
    assert not (tmp_path / "secrets.key").exists()  # a secret key in the settings needs no key file


def test_rotating_the_key_file_reencrypts_every_stored_secret(
    database: BoundDatabase, tmp_path: Path
) -> None:
    settings = _settings(tmp_path / "data")
    with database.transaction() as session:
        mailbox = add_imap_mailbox(
            session,
            SYSTEM,
            settings=settings,
            name="box",
            host="imap.example",
            port=993,
            username="support",
            password="imap-password",
        )
        connect_channel(
            session,
            SYSTEM,
            settings=settings,
            team_id="T1",
            channel_id="C1",
            bot_token="xoxb-1",
            signing_secret="slack-signing",
        )
        before = mailbox.password
    first_key = secret_box.keys(settings)[0]

    secret_box.add_file_key(settings)
    with database.transaction() as session:
        assert reencrypt_stored_secrets(session, settings) == 3
    secret_box.drop_old_file_keys(settings)

    assert secret_box.keys(settings) != [first_key]
    assert len(secret_box.keys(settings)) == 1
    with database.transaction(write=False) as session:
        mailbox = session.scalars(sa.select(ImapMailbox)).one()
        assert mailbox.password != before
        assert mailbox_password(settings, mailbox) == "imap-password"
        assert bot_token_for(session, settings, "C1") == "xoxb-1"
        connection = session.scalars(sa.select(SlackConnection)).one()
        assert secret_box.reveal(settings, connection.signing_secret or "") == "slack-signing"


@contextmanager
def _empty_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    with postgres_database() as url:
        yield url


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_migration_seals_plain_text_secrets(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPSDESK_SECRET_KEY", raising=False)
    with _empty_database(kind, tmp_path) as url:
        upgrade(url, "channels_03")
        engine = make_engine(url)
        try:
            with engine.begin() as connection:
                connection.execute(
                    sa.text(
                        "INSERT INTO imap_mailboxes (name, host, port, security, username, password, folder,"
                        " last_uid, is_active, created_at) VALUES ('old', 'imap.example', 993, 'tls', 'u',"
                        " 'plain-password', 'INBOX', 0, :yes, CURRENT_TIMESTAMP)"
                    ),
                    {"yes": True},
                )
                connection.execute(
                    sa.text(
                        "INSERT INTO slack_connections (team_id, channel_id, name, bot_token, created_at)"
                        " VALUES ('T1', 'C1', 'old', 'xoxb-plain', CURRENT_TIMESTAMP)"
                    )
                )
            upgrade(url)
            with engine.connect() as connection:
                password = connection.execute(sa.text("SELECT password FROM imap_mailboxes")).scalar_one()
                token = connection.execute(sa.text("SELECT bot_token FROM slack_connections")).scalar_one()
                interval = connection.execute(
                    sa.text("SELECT poll_interval_seconds FROM imap_mailboxes")
                ).scalar_one()
        finally:
            engine.dispose()
    settings = Settings(environment="test")  # from the environment, like the migration
    assert password.startswith("fernet:")
    assert token.startswith("fernet:")
    assert secret_box.reveal(settings, password) == "plain-password"
    assert secret_box.reveal(settings, token) == "xoxb-plain"
    assert interval == 60
