"""Polling IMAP mailboxes (imap-tools) for support mail, with IDLE where the server offers it.

Invariants: each message is fetched with ``BODY.PEEK[]`` (the raw bytes, without setting
``\\Seen``), stored and processed through :mod:`opsdesk.channels.inbound_pipeline`, and only then
is the mailbox's ``last_uid`` advanced and the message flagged seen, one message at a time: a crash
re-fetches at most the message in hand, which the Message-ID dedupe stores once. A changed
UIDVALIDITY (the server renumbered the folder) restarts from the first UID, which dedupe makes safe.
Mail over the size limit cannot be refused (it is already delivered), so it is kept as ``refused``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from imap_tools import A, BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.consts import MailMessageFlags
from sqlalchemy import select

from opsdesk import clock
from opsdesk.channels import inbound_pipeline
from opsdesk.channels.models import ImapMailbox
from opsdesk.config import Settings
from opsdesk.db import Database

log = logging.getLogger(__name__)
IMAP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True, slots=True)
class PollResult:
    mailbox: str
    fetched: int
    duplicates: int
    supports_idle: bool


def _connect(mailbox: ImapMailbox) -> BaseMailBox:
    if mailbox.security == "tls":
        return MailBox(mailbox.host, mailbox.port, timeout=IMAP_TIMEOUT_SECONDS)
    if mailbox.security == "starttls":
        return MailBoxStartTls(mailbox.host, mailbox.port, timeout=IMAP_TIMEOUT_SECONDS)
    return MailBoxUnencrypted(mailbox.host, mailbox.port, timeout=IMAP_TIMEOUT_SECONDS)


def _raw_of(client_response: list[object]) -> bytes | None:
    for item in client_response:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def _take_new(
    connection: BaseMailBox, database: Database, settings: Settings, mailbox_id: int
) -> tuple[int, int]:
    with database.transaction(write=False) as session:
        config = session.get_one(ImapMailbox, mailbox_id)
        last_uid, known_validity, folder, name = (
            config.last_uid,
            config.uid_validity,
            config.folder,
            config.name,
        )
    status = connection.folder.status(folder, ["UIDVALIDITY"])
    validity = int(status["UIDVALIDITY"])
    if known_validity is not None and known_validity != validity:
        last_uid = 0
    fetched = duplicates = 0
    uids = sorted(int(uid) for uid in connection.uids(A(uid=f"{last_uid + 1}:*")))
    for uid in uids:
        if uid <= last_uid:  # "n:*" always matches the newest message, even below n
            continue
        typ, data = connection.client.uid("FETCH", str(uid), "(BODY.PEEK[])")
        raw = _raw_of(list(data)) if typ == "OK" else None
        if raw is not None:
            result = inbound_pipeline.ingest_email(
                database, raw, source=f"imap:{name}"[:120], settings=settings, refuse_oversize=False
            )
            fetched += 1
            duplicates += int(result.duplicate)
            connection.flag(str(uid), MailMessageFlags.SEEN, True)
        with database.transaction() as session:
            config = session.get_one(ImapMailbox, mailbox_id)
            config.last_uid = uid
            config.uid_validity = validity
        last_uid = uid
    with database.transaction() as session:
        config = session.get_one(ImapMailbox, mailbox_id)
        config.uid_validity = validity
        config.last_polled_at = clock.now()
        config.last_error = None
    return fetched, duplicates


def poll_mailbox(database: Database, settings: Settings, mailbox_id: int) -> PollResult:
    """Take every message newer than the last one taken; returns what was done."""
    with database.transaction(write=False) as session:
        config = session.get_one(ImapMailbox, mailbox_id)
        session.expunge(config)
    try:
        with _connect(config).login(
            config.username, config.password, initial_folder=config.folder
        ) as connection:
            fetched, duplicates = _take_new(connection, database, settings, mailbox_id)
            supports_idle = "IDLE" in connection.client.capabilities
    except Exception as error:
        with database.transaction() as session:
            session.get_one(ImapMailbox, mailbox_id).last_error = f"{type(error).__name__}: {error}"[:2000]
        raise
    return PollResult(config.name, fetched, duplicates, supports_idle)


def poll_all(database: Database, settings: Settings) -> list[PollResult]:
    """Poll each active mailbox; one mailbox failing does not stop the others."""
    with database.transaction(write=False) as session:
        ids = list(session.scalars(select(ImapMailbox.id).where(ImapMailbox.is_active.is_(True))))
    results: list[PollResult] = []
    for mailbox_id in ids:
        try:
            results.append(poll_mailbox(database, settings, mailbox_id))
        except Exception:
            log.exception("polling IMAP mailbox %s failed", mailbox_id)
    return results


def watch_mailbox(
    database: Database,
    settings: Settings,
    mailbox_id: int,
    *,
    rounds: int | None = None,
    idle_seconds: int = 60,
) -> int:
    """Poll, then wait in IDLE (or sleep where the server has no IDLE) and poll again; ``rounds``
    bounds the loop (None: forever). Returns the number of messages fetched."""
    with database.transaction(write=False) as session:
        config = session.get_one(ImapMailbox, mailbox_id)
        session.expunge(config)
    total = 0
    done = 0
    with _connect(config).login(config.username, config.password, initial_folder=config.folder) as connection:
        supports_idle = "IDLE" in connection.client.capabilities
        while rounds is None or done < rounds:
            fetched, _ = _take_new(connection, database, settings, mailbox_id)
            total += fetched
            done += 1
            if rounds is not None and done >= rounds:
                break
            if supports_idle:
                connection.idle.wait(timeout=idle_seconds)
            else:
                time.sleep(idle_seconds)
    return total
