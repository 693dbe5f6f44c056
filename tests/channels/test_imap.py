"""IMAP polling against a real Dovecot: new mail is taken once, flagged seen, threaded; IDLE wakes
the watcher when mail arrives."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from imap_tools import MailBoxUnencrypted
from sqlalchemy import func, select

from opsdesk.channels.imap_polling import poll_mailbox, watch_mailbox
from opsdesk.channels.models import ImapMailbox
from opsdesk.channels.service.mailboxes import add_imap_mailbox
from opsdesk.config import Settings
from opsdesk.tickets.models import Message, Ticket
from tests.channels.mail import simple_email
from tests.support.databases import BoundDatabase
from tests.support.dovecot import ImapServer, dovecot_server
from tests.support.factories import SYSTEM


@pytest.fixture(scope="module")
def imap_server() -> Iterator[ImapServer]:
    with dovecot_server() as server:
        yield server


@pytest.fixture
def folder(imap_server: ImapServer) -> str:
    """A fresh folder per test (the server lives for the module)."""
    name = f"support-{uuid.uuid4().hex[:8]}"
    with MailBoxUnencrypted(imap_server.host, imap_server.port).login(
        imap_server.username, imap_server.password
    ) as box:
        box.folder.create(name)
    return name


def _deliver(server: ImapServer, folder: str, raw: bytes) -> None:
    with MailBoxUnencrypted(server.host, server.port).login(server.username, server.password) as box:
        box.append(raw, folder)


def _mailbox(database: BoundDatabase, server: ImapServer, folder: str) -> int:
    with database.transaction() as session:
        return add_imap_mailbox(
            session,
            SYSTEM,
            name=f"box {folder}",
            host=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            security="none",
            folder=folder,
        ).id


def test_polling_takes_new_mail_once_and_threads_it(
    database: BoundDatabase, settings: Settings, imap_server: ImapServer, folder: str
) -> None:
    _deliver(imap_server, folder, simple_email(message_id="imap-1@x.example"))
    _deliver(
        imap_server,
        folder,
        simple_email(
            message_id="imap-2@x.example",
            in_reply_to="imap-1@x.example",
            subject="Re: Printer on fire",
            body="Still burning.",
        ),
    )
    _deliver(imap_server, folder, simple_email(message_id="imap-1@x.example"))  # delivered twice
    mailbox_id = _mailbox(database, imap_server, folder)

    first = poll_mailbox(database, settings, mailbox_id)
    second = poll_mailbox(database, settings, mailbox_id)

    assert (first.fetched, first.duplicates, first.supports_idle) == (3, 1, True)
    assert (second.fetched, second.duplicates) == (0, 0)
    with database.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1
        assert list(session.scalars(select(Message.body_text).order_by(Message.id))) == [
            "The printer is on fire.",
            "Still burning.",
        ]
        assert session.get_one(ImapMailbox, mailbox_id).last_uid == 3
    with MailBoxUnencrypted(imap_server.host, imap_server.port).login(
        imap_server.username, imap_server.password, initial_folder=folder
    ) as box:
        assert [message.flags for message in box.fetch(mark_seen=False, headers_only=True)] == [
            ("\\Seen",)
        ] * 3

    _deliver(imap_server, folder, simple_email(message_id="imap-3@x.example", subject="Another thing"))
    third = poll_mailbox(database, settings, mailbox_id)
    assert third.fetched == 1
    with database.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 2


def test_idle_wakes_the_watcher_when_mail_arrives(
    database: BoundDatabase, settings: Settings, imap_server: ImapServer, folder: str
) -> None:
    mailbox_id = _mailbox(database, imap_server, folder)
    fetched: list[int] = []
    watcher = threading.Thread(
        target=lambda: fetched.append(
            watch_mailbox(database, settings, mailbox_id, rounds=2, idle_seconds=600)
        ),
        daemon=True,
    )
    watcher.start()
    time.sleep(0.5)
    _deliver(imap_server, folder, simple_email(message_id="idle-1@x.example", subject="Pushed by IDLE"))
    watcher.join(timeout=30)

    assert fetched == [1]
    # IDLE returned on arrival: the watcher did not sit out its ten-minute wait
    assert not watcher.is_alive()
    with database.transaction(write=False) as session:
        assert list(session.scalars(select(Ticket.subject))) == ["Pushed by IDLE"]


def test_a_mailbox_needs_valid_settings(database: BoundDatabase) -> None:
    from opsdesk.channels.errors import InvalidInboundError

    with database.transaction() as session, pytest.raises(InvalidInboundError) as refused:
        add_imap_mailbox(session, SYSTEM, name="", host="", port=0, username="", password="", security="ssl3")
    assert [".".join(map(str, problem.location)) for problem in refused.value.fields] == [
        "name",
        "host",
        "port",
        "security",
        "username",
    ]
    with database.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(ImapMailbox)) == 0
