"""Polling IMAP mailboxes (imap-tools) for support mail, with IDLE where the server offers it.

Invariants
- One poller per mailbox at a time, across threads and processes: a poller first takes the
  mailbox's lease (``poll_lease_owner``/``poll_lease_until``, one conditional UPDATE that only
  succeeds when no live lease exists), renews it with every message it takes and releases it at
  the end; a poller killed mid-poll leaves a lease that expires after :data:`LEASE`.
- Each message is fetched with ``BODY.PEEK[]`` (the raw bytes, without setting ``\\Seen``),
  stored and processed through :mod:`opsdesk.channels.inbound_pipeline`, and only then is the
  mailbox's ``last_uid`` advanced and the message flagged seen, one message at a time: a crash
  re-fetches at most the message in hand, which the Message-ID dedupe stores once. A changed
  UIDVALIDITY (the server renumbered the folder) restarts from the first UID, which dedupe makes safe.
- Mail over the size limit cannot be refused (it is already delivered), so it is kept as
  ``refused`` and its sender is told why by email (never an automated sender).
- Scheduled polling (:mod:`opsdesk.channels.jobs`): every enabled mailbox whose interval has
  passed gets one ``imap.poll`` job; the job runner (``opsdesk serve``, ``opsdesk worker``) runs
  it. IDLE keeps a connection open for minutes, which would hold a runner thread and its batch, so
  IDLE is the job of ``opsdesk channels poll-imap --watch ID``; the watcher holds the lease, so
  the runner leaves a watched mailbox alone.
- The password is decrypted only here, to log in; errors never contain it.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from imap_tools import A, BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.consts import MailMessageFlags
from imap_tools.errors import MailboxFolderSelectError, MailboxLoginError, UnexpectedCommandStatusError
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.channels import inbound_pipeline
from opsdesk.channels.models import ImapMailbox
from opsdesk.channels.service.mailboxes import mailbox_password
from opsdesk.config import Settings
from opsdesk.db import Database

log = logging.getLogger(__name__)
IMAP_TIMEOUT_SECONDS = 30
CHECK_TIMEOUT_SECONDS = 10
LEASE = timedelta(minutes=5)
MAX_MESSAGES_PER_POLL = 200  # a backlog is taken over several polls, so one poll stays short


class LeaseLostError(Exception):
    """Another poller took the mailbox over (this one's lease ran out)."""


@dataclass(frozen=True, slots=True)
class PollResult:
    mailbox: str
    fetched: int
    duplicates: int
    supports_idle: bool
    busy: bool = False  # another poller holds the mailbox; nothing was done


@dataclass(frozen=True, slots=True)
class MailboxSnapshot:
    """What a poller needs of the mailbox row, read once (no ORM object crosses threads)."""

    id: int
    name: str
    host: str
    port: int
    security: str
    username: str
    password: str
    folder: str


def _snapshot(database: Database, settings: Settings, mailbox_id: int) -> MailboxSnapshot:
    with database.transaction(write=False) as session:
        row = session.get_one(ImapMailbox, mailbox_id)
        return MailboxSnapshot(
            row.id,
            row.name,
            row.host,
            row.port,
            row.security,
            row.username,
            mailbox_password(settings, row),
            row.folder,
        )


def _connect(mailbox: MailboxSnapshot, timeout: float = IMAP_TIMEOUT_SECONDS) -> BaseMailBox:
    if mailbox.security == "tls":
        return MailBox(mailbox.host, mailbox.port, timeout=timeout)
    if mailbox.security == "starttls":
        return MailBoxStartTls(mailbox.host, mailbox.port, timeout=timeout)
    return MailBoxUnencrypted(mailbox.host, mailbox.port, timeout=timeout)


def _login(mailbox: MailboxSnapshot, timeout: float = IMAP_TIMEOUT_SECONDS) -> BaseMailBox:
    return _connect(mailbox, timeout).login(mailbox.username, mailbox.password, initial_folder=mailbox.folder)


def new_owner(label: str = "poll") -> str:
    return f"{label}:{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:120]


# ---------------------------------------------------------------------------------------- lease


def claim(database: Database, mailbox_id: int, owner: str) -> bool:
    """Take the mailbox's lease unless another poller holds a live one."""
    now = clock.now()
    with database.transaction() as session:
        taken = session.execute(
            update(ImapMailbox)
            .where(
                ImapMailbox.id == mailbox_id,
                or_(
                    ImapMailbox.poll_lease_until.is_(None),
                    ImapMailbox.poll_lease_until < now,
                ),
            )
            .values(poll_lease_owner=owner, poll_lease_until=now + LEASE, poll_attempted_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(taken.rowcount) == 1  # type: ignore[attr-defined]


def release(database: Database, mailbox_id: int, owner: str) -> None:
    with database.transaction() as session:
        session.execute(
            update(ImapMailbox)
            .where(ImapMailbox.id == mailbox_id, ImapMailbox.poll_lease_owner == owner)
            .values(poll_lease_owner=None, poll_lease_until=None)
            .execution_options(synchronize_session=False)
        )


def _advance(database: Database, mailbox_id: int, owner: str, **values: object) -> None:
    """Record progress and renew the lease; raises when another poller took the mailbox over."""
    with database.transaction() as session:
        done = session.execute(
            update(ImapMailbox)
            .where(ImapMailbox.id == mailbox_id, ImapMailbox.poll_lease_owner == owner)
            .values(poll_lease_until=clock.now() + LEASE, **values)
            .execution_options(synchronize_session=False)
        )
        if int(done.rowcount) != 1:  # type: ignore[attr-defined]
            raise LeaseLostError(f"mailbox {mailbox_id} was taken over by another poller")


# ---------------------------------------------------------------------------------------- polling


def _raw_of(client_response: list[object]) -> bytes | None:
    for item in client_response:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def _take_new(
    connection: BaseMailBox,
    database: Database,
    settings: Settings,
    mailbox: MailboxSnapshot,
    owner: str,
    limit: int | None = MAX_MESSAGES_PER_POLL,
) -> tuple[int, int]:
    with database.transaction(write=False) as session:
        config = session.get_one(ImapMailbox, mailbox.id)
        last_uid, known_validity = config.last_uid, config.uid_validity
    status = connection.folder.status(mailbox.folder, ["UIDVALIDITY"])
    validity = int(status["UIDVALIDITY"])
    if known_validity is not None and known_validity != validity:
        last_uid = 0
    fetched = duplicates = 0
    uids = sorted(int(uid) for uid in connection.uids(A(uid=f"{last_uid + 1}:*")))
    uids = [uid for uid in uids if uid > last_uid]  # "n:*" always matches the newest, even below n
    for uid in uids[:limit]:
        typ, data = connection.client.uid("FETCH", str(uid), "(BODY.PEEK[])")
        raw = _raw_of(list(data)) if typ == "OK" else None
        if raw is not None:
            result = inbound_pipeline.ingest_email(
                database, raw, source=f"imap:{mailbox.name}"[:120], settings=settings, refuse_oversize=False
            )
            fetched += 1
            duplicates += int(result.duplicate)
            connection.flag(str(uid), MailMessageFlags.SEEN, True)
        _advance(database, mailbox.id, owner, last_uid=uid, uid_validity=validity)
    _advance(database, mailbox.id, owner, uid_validity=validity, last_polled_at=clock.now(), last_error=None)
    return fetched, duplicates


def _record_error(database: Database, mailbox_id: int, error: BaseException) -> None:
    with database.transaction() as session:
        session.execute(
            update(ImapMailbox)
            .where(ImapMailbox.id == mailbox_id)
            .values(last_error=describe_error(error)[:2000])
            .execution_options(synchronize_session=False)
        )


def poll_mailbox(
    database: Database, settings: Settings, mailbox_id: int, *, owner: str | None = None
) -> PollResult:
    """Take every message newer than the last one taken (at most :data:`MAX_MESSAGES_PER_POLL`),
    unless another poller holds the mailbox (then ``busy``). Errors are recorded on the mailbox
    (``last_error``) and raised."""
    owner = owner or new_owner()
    mailbox = _snapshot(database, settings, mailbox_id)
    if not claim(database, mailbox_id, owner):
        return PollResult(mailbox.name, 0, 0, False, busy=True)
    try:
        with _connect(mailbox).login(
            mailbox.username, mailbox.password, initial_folder=mailbox.folder
        ) as box:
            fetched, duplicates = _take_new(box, database, settings, mailbox, owner)
            supports_idle = "IDLE" in box.client.capabilities
    except LeaseLostError:
        log.warning("IMAP mailbox %s: lease lost; the other poller continues", mailbox.name)
        return PollResult(mailbox.name, 0, 0, False, busy=True)
    except Exception as error:
        _record_error(database, mailbox_id, error)
        raise
    finally:
        release(database, mailbox_id, owner)
    return PollResult(mailbox.name, fetched, duplicates, supports_idle)


def poll_all(database: Database, settings: Settings) -> list[PollResult]:
    """Poll each enabled mailbox now; one mailbox failing does not stop the others."""
    with database.transaction(write=False) as session:
        ids = list(session.scalars(select(ImapMailbox.id).where(ImapMailbox.is_active.is_(True))))
    results: list[PollResult] = []
    for mailbox_id in ids:
        try:
            results.append(poll_mailbox(database, settings, mailbox_id))
        except Exception:
            log.exception("polling IMAP mailbox %s failed", mailbox_id)
    return results


def due_mailboxes(session: Session) -> list[tuple[int, str]]:
    """(mailbox id, period key) of every enabled mailbox whose interval has passed and that no
    poller holds; the key names the poll so one due poll is queued once."""
    now = clock.now()
    due: list[tuple[int, str]] = []
    for row in session.execute(
        select(
            ImapMailbox.id,
            ImapMailbox.poll_interval_seconds,
            ImapMailbox.poll_attempted_at,
            ImapMailbox.poll_lease_until,
        ).where(ImapMailbox.is_active.is_(True))
    ):
        mailbox_id, interval, attempted_at, lease_until = row
        if lease_until is not None and lease_until >= now:
            continue
        if attempted_at is not None and attempted_at + timedelta(seconds=interval) > now:
            continue
        due.append((int(mailbox_id), attempted_at.isoformat() if attempted_at is not None else "first"))
    return due


# ---------------------------------------------------------------------------------------- IDLE


def watch_mailbox(
    database: Database,
    settings: Settings,
    mailbox_id: int,
    *,
    stop: threading.Event | None = None,
    idle_seconds: int = 60,
    idling: threading.Event | None = None,
    on_fetched: Callable[[int], None] | None = None,
) -> int:
    """Poll, then wait in IDLE (or pause where the server has no IDLE) until the server reports a
    change or ``idle_seconds`` pass, and poll again, until ``stop`` is set. Holds the mailbox's
    lease meanwhile. ``idling`` is set each time IDLE has begun (the server confirmed it);
    ``on_fetched`` gets the count of each round. Returns the number of messages fetched."""
    stop = stop or threading.Event()
    owner = new_owner("watch")
    mailbox = _snapshot(database, settings, mailbox_id)
    if not claim(database, mailbox_id, owner):
        raise LeaseLostError(f"mailbox {mailbox.name} is being polled by another worker")
    total = 0
    try:
        with _connect(mailbox).login(
            mailbox.username, mailbox.password, initial_folder=mailbox.folder
        ) as box:
            supports_idle = "IDLE" in box.client.capabilities
            while not stop.is_set():
                fetched, _ = _take_new(box, database, settings, mailbox, owner, limit=None)
                total += fetched
                if on_fetched is not None:
                    on_fetched(fetched)
                if stop.is_set():
                    break
                if supports_idle:
                    _idle(box, stop, idle_seconds, idling)
                else:
                    stop.wait(idle_seconds)
    except Exception as error:
        _record_error(database, mailbox_id, error)
        raise
    finally:
        release(database, mailbox_id, owner)
    return total


def _idle(box: BaseMailBox, stop: threading.Event, seconds: int, idling: threading.Event | None) -> None:
    """Stay in IDLE until the server says something, ``seconds`` pass, or ``stop`` is set
    (checked every second: IDLE stays on, only the wait on the socket is sliced)."""
    box.idle.start()  # type: ignore[no-untyped-call]
    if idling is not None:
        idling.set()
    deadline = time.monotonic() + seconds
    try:
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or box.idle.poll(timeout=min(1.0, remaining)):
                return
    finally:
        box.idle.stop()  # type: ignore[no-untyped-call]


# ---------------------------------------------------------------------------------------- checks


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    ok: bool
    message: str


def describe_error(error: BaseException) -> str:
    """A sentence an admin can act on, for the errors connecting to a mailbox raises."""
    if isinstance(error, socket.gaierror):
        return "the host name cannot be resolved (check the IMAP host)"
    if isinstance(error, ConnectionRefusedError):
        return "the server refused the connection (check the host and port)"
    if isinstance(error, TimeoutError | socket.timeout):
        return "the server did not answer in time (check the host, port and firewall)"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"the server's TLS certificate is not trusted: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return "the TLS handshake failed (check the port and the security setting: tls, starttls or none)"
    if isinstance(error, MailboxLoginError):
        return "the server refused the username or password"
    if isinstance(error, MailboxFolderSelectError):
        return "the folder does not exist on the server (check the folder name)"
    if isinstance(error, UnexpectedCommandStatusError):
        return f"the server refused a command: {error}"
    if isinstance(error, OSError):
        return f"the connection failed: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"


def check_connection(database: Database, settings: Settings, mailbox_id: int) -> ConnectionCheck:
    """Log in, open the folder and count its messages; a readable reason when that fails."""
    mailbox = _snapshot(database, settings, mailbox_id)
    try:
        with _connect(mailbox, CHECK_TIMEOUT_SECONDS).login(
            mailbox.username, mailbox.password, initial_folder=mailbox.folder
        ) as box:
            status = box.folder.status(mailbox.folder, ["MESSAGES", "UNSEEN"])
            idle = "IDLE" in box.client.capabilities
    except Exception as error:
        return ConnectionCheck(False, describe_error(error))
    return ConnectionCheck(
        True,
        f"connected: folder {mailbox.folder} holds {status['MESSAGES']} messages ({status['UNSEEN']} unread)"
        + ("; the server offers IDLE" if idle else ""),
    )
