"""IMAP polling against a real Dovecot: new mail is taken once, flagged seen, threaded; IDLE wakes
the watcher when mail arrives."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from imap_tools import MailBoxUnencrypted
from sqlalchemy import func, select

from opsdesk import clock
from opsdesk.channels import imap_polling
from opsdesk.channels.imap_polling import poll_mailbox, watch_mailbox
from opsdesk.channels.models import ImapMailbox, OutboundEmail, RawInbound
from opsdesk.channels.service.mailboxes import add_imap_mailbox
from opsdesk.config import Settings
from opsdesk.jobs.runner import run_pending
from opsdesk.outbox import OutboxJob
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


def _mailbox(
    database: BoundDatabase,
    server: ImapServer,
    folder: str,
    settings: Settings,
    *,
    interval: int = 60,
    active: bool = True,
    password: str | None = None,
) -> int:
    with database.transaction() as session:
        return add_imap_mailbox(
            session,
            SYSTEM,
            settings=settings,
            name=f"box {folder}",
            host=server.host,
            port=server.port,
            username=server.username,
            password=password or server.password,
            security="none",
            folder=folder,
            poll_interval_seconds=interval,
            is_active=active,
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
    mailbox_id = _mailbox(database, imap_server, folder, settings)

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
    mailbox_id = _mailbox(database, imap_server, folder, settings)
    idling = threading.Event()
    arrived = threading.Event()
    stop = threading.Event()
    totals: list[int] = []
    watcher = threading.Thread(
        target=lambda: totals.append(
            watch_mailbox(
                database,
                settings,
                mailbox_id,
                stop=stop,
                idle_seconds=600,
                idling=idling,
                on_fetched=lambda count: arrived.set() if count else None,
            )
        ),
        daemon=True,
    )
    watcher.start()
    try:
        # The server confirmed IDLE: what arrives now can only reach us through IDLE's push
        # (the watcher would otherwise sit out its ten-minute wait).
        assert idling.wait(timeout=60)
        _deliver(imap_server, folder, simple_email(message_id="idle-1@x.example", subject="Pushed by IDLE"))
        assert arrived.wait(timeout=120)
    finally:
        stop.set()
        watcher.join(timeout=60)
    assert not watcher.is_alive()
    assert totals == [1]
    with database.transaction(write=False) as session:
        assert list(session.scalars(select(Ticket.subject))) == ["Pushed by IDLE"]
        mailbox = session.get_one(ImapMailbox, mailbox_id)
        assert (mailbox.poll_lease_owner, mailbox.poll_lease_until) == (None, None)  # released


def test_a_watched_mailbox_is_not_polled_by_anyone_else(
    database: BoundDatabase, settings: Settings, imap_server: ImapServer, folder: str
) -> None:
    mailbox_id = _mailbox(database, imap_server, folder, settings)
    _deliver(imap_server, folder, simple_email(message_id="lease-1@x.example"))
    assert imap_polling.claim(database, mailbox_id, "another-worker")

    busy = poll_mailbox(database, settings, mailbox_id)

    assert busy.busy is True
    assert busy.fetched == 0
    with database.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0
        assert session.get_one(ImapMailbox, mailbox_id).poll_lease_owner == "another-worker"
        assert imap_polling.due_mailboxes(session) == []
    # The other worker died: its lease runs out and the mailbox is polled again.
    with clock.frozen(clock.now() + imap_polling.LEASE + timedelta(seconds=1)):
        taken = poll_mailbox(database, settings, mailbox_id)
    assert (taken.busy, taken.fetched) == (False, 1)


def test_the_job_runner_polls_enabled_mailboxes_on_their_interval(
    database: BoundDatabase,
    settings: Settings,
    imap_server: ImapServer,
    folder: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSDESK_DATA_DIR", str(settings.data_dir))  # the runner's Settings(): same key
    enabled = _mailbox(database, imap_server, folder, settings, interval=120)
    disabled = _mailbox(database, imap_server, folder + "-off", settings, active=False)
    _deliver(imap_server, folder, simple_email(message_id="sched-1@x.example", subject="First"))
    start = clock.now()

    with clock.frozen(start) as frozen:
        run_pending(database)
        _deliver(imap_server, folder, simple_email(message_id="sched-2@x.example", subject="Second"))
        frozen.advance(timedelta(seconds=60))  # before the interval: not polled again
        run_pending(database)
        with database.transaction(write=False) as session:
            assert list(session.scalars(select(Ticket.subject).order_by(Ticket.id))) == ["First"]
        frozen.advance(timedelta(seconds=61))
        run_pending(database)

    with database.transaction(write=False) as session:
        assert list(session.scalars(select(Ticket.subject).order_by(Ticket.id))) == ["First", "Second"]
        polls = list(
            session.scalars(
                select(OutboxJob.idempotency_key).where(OutboxJob.kind == "imap.poll").order_by(OutboxJob.id)
            )
        )
        assert polls == [f"imap.poll:{enabled}:first", f"imap.poll:{enabled}:{start.isoformat()}"]
        assert session.get_one(ImapMailbox, disabled).poll_attempted_at is None
        assert session.get_one(ImapMailbox, enabled).poll_lease_owner is None


def test_passwords_are_sealed_at_rest_and_still_log_in(
    database: BoundDatabase, settings: Settings, imap_server: ImapServer, folder: str
) -> None:
    mailbox_id = _mailbox(database, imap_server, folder, settings)
    with database.transaction(write=False) as session:
        stored = session.scalar(select(ImapMailbox.password).where(ImapMailbox.id == mailbox_id))
    assert stored is not None
    assert stored.startswith("fernet:")
    assert imap_server.password not in stored
    assert (settings.data_dir / "secrets.key").exists()
    _deliver(imap_server, folder, simple_email(message_id="sealed-1@x.example"))
    assert poll_mailbox(database, settings, mailbox_id).fetched == 1


def test_oversize_mail_from_a_mailbox_is_refused_and_its_sender_told(
    database: BoundDatabase, tmp_path: Path, imap_server: ImapServer, folder: str
) -> None:
    small = Settings(
        data_dir=tmp_path / "small",
        support_address="support@example.com",
        environment="test",
        inbound_email_max_bytes=2_000,
    )
    small.ensure_dirs()
    mailbox_id = _mailbox(database, imap_server, folder, small)
    _deliver(imap_server, folder, simple_email(message_id="big-1@x.example", body="x" * 5_000))

    result = poll_mailbox(database, small, mailbox_id)

    assert result.fetched == 1
    with database.transaction(write=False) as session:
        row = session.scalars(select(RawInbound)).one()
        assert row.status == "refused"
        assert row.error is not None
        assert "the sender was told by email" in row.error
        refusal = session.scalars(select(OutboundEmail)).one()
        assert (refusal.kind, refusal.to_address, refusal.ticket_id) == (
            "refusal",
            "kim@customer.example",
            None,
        )
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_test_connection_reports_readable_errors(
    database: BoundDatabase, settings: Settings, imap_server: ImapServer, folder: str
) -> None:
    good = _mailbox(database, imap_server, folder, settings)
    wrong_password = _mailbox(database, imap_server, folder + "-pw", settings, password="not-the-password")
    with database.transaction() as session:
        missing_folder = add_imap_mailbox(
            session,
            SYSTEM,
            settings=settings,
            name="missing folder",
            host=imap_server.host,
            port=imap_server.port,
            username=imap_server.username,
            password=imap_server.password,
            security="none",
            folder="No-Such-Folder",
        ).id
        closed_port = add_imap_mailbox(
            session,
            SYSTEM,
            settings=settings,
            name="closed port",
            host="127.0.0.1",
            port=_closed_port(),
            username="x",
            password="y",
            security="none",
        ).id

    ok = imap_polling.check_connection(database, settings, good)
    assert ok.ok is True
    assert ok.message == f"connected: folder {folder} holds 0 messages (0 unread); the server offers IDLE"
    assert imap_polling.check_connection(database, settings, wrong_password) == imap_polling.ConnectionCheck(
        False, "the server refused the username or password"
    )
    assert imap_polling.check_connection(database, settings, missing_folder) == imap_polling.ConnectionCheck(
        False, "the folder does not exist on the server (check the folder name)"
    )
    assert imap_polling.check_connection(database, settings, closed_port) == imap_polling.ConnectionCheck(
        False, "the server refused the connection (check the host and port)"
    )


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_mailbox_needs_valid_settings(database: BoundDatabase) -> None:
    from opsdesk.channels.errors import InvalidInboundError

    with database.transaction() as session, pytest.raises(InvalidInboundError) as refused:
        add_imap_mailbox(
            session,
            SYSTEM,
            settings=Settings(environment="test"),
            name="",
            host="",
            port=0,
            username="",
            password="",
            security="ssl3",
            poll_interval_seconds=1,
        )
    assert [".".join(map(str, problem.location)) for problem in refused.value.fields] == [
        "name",
        "host",
        "port",
        "security",
        "username",
        "password",
        "poll_interval_seconds",
    ]
    with database.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(ImapMailbox)) == 0
