"""The two steps every inbound email takes: store, then process.

Invariants: nothing is acknowledged to a sender before the raw bytes are committed. The SMTP
receiver commits the store, answers 250, then processes in a second transaction, so a crash after
the answer loses nothing (:func:`resume_pending` picks up what was stored but not processed).
Callers that acknowledge only after both steps (HTTP, IMAP) store and process in one transaction
(:func:`ingest_email`, one commit). Either way a failure while processing rolls back that step
only and marks the stored row ``failed`` with the reason; a repeat of a stored message is answered
as accepted without being stored or processed again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opsdesk.channels.enums import InboundStatus
from opsdesk.channels.service import inbound
from opsdesk.channels.service.outbound import queue_receipt, queue_receipt_for_new_email_ticket
from opsdesk.config import Settings
from opsdesk.db import Database
from opsdesk.tickets.models import Ticket

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestResult:
    raw_inbound_id: int
    duplicate: bool
    status: str
    ticket_id: int | None = None


StoredInbound = inbound.StoredInbound


def _store_in(
    session: Session, raw: bytes, *, source: str, settings: Settings, refuse_oversize: bool
) -> inbound.StoredInbound:
    stored = inbound.store_raw_email(
        session,
        raw,
        source=source,
        max_bytes=settings.inbound_email_max_bytes,
        refuse_oversize=refuse_oversize,
    )
    if stored.status == InboundStatus.REFUSED.value and not stored.duplicate:
        # Kept because it could not be refused at the door (IMAP): tell the sender why.
        inbound.tell_sender_refused(session, stored.raw_inbound_id, settings)
    return stored


def store(
    database: Database, raw: bytes, *, source: str, settings: Settings, refuse_oversize: bool = True
) -> inbound.StoredInbound:
    """Commit the raw message (raises MessageTooLargeError before storing when over the limit)."""
    try:
        with database.transaction() as session:
            return _store_in(session, raw, source=source, settings=settings, refuse_oversize=refuse_oversize)
    except IntegrityError:
        # The same message arrived twice at once; the other copy won the unique key.
        with database.transaction() as session:
            return _store_in(session, raw, source=source, settings=settings, refuse_oversize=refuse_oversize)


def _process_in(session: Session, raw_inbound_id: int, settings: Settings) -> IngestResult:
    outcome = inbound.process_raw_email(session, raw_inbound_id, settings)
    if outcome.send_receipt and outcome.ticket_id is not None:
        if outcome.sender:
            queue_receipt_for_new_email_ticket(
                session, outcome.ticket_id, outcome.sender, settings, outcome.brand_id
            )
        else:
            queue_receipt(session, session.get_one(Ticket, outcome.ticket_id), settings)
    return IngestResult(raw_inbound_id, False, outcome.status, outcome.ticket_id)


def process(database: Database, raw_inbound_id: int, settings: Settings) -> IngestResult:
    """Process a committed row in a transaction of its own (the SMTP receiver, resumes)."""
    try:
        with database.transaction() as session:
            return _process_in(session, raw_inbound_id, settings)
    except Exception as error:  # any failure: keep the reason on the stored row, lose nothing
        log.exception("processing inbound email %s failed", raw_inbound_id)
        with database.transaction() as session:
            inbound.mark_failed(session, raw_inbound_id, f"{type(error).__name__}: {error}")
        return IngestResult(raw_inbound_id, False, "failed")


def ingest_email(
    database: Database, raw: bytes, *, source: str, settings: Settings, refuse_oversize: bool = True
) -> IngestResult:
    """Store and process in one transaction (one commit), for callers that have not acknowledged
    the message yet (HTTP answers after this returns; IMAP flags it seen and advances its UID after
    this returns): a crash before the commit loses nothing, because the sender still has the
    message. Processing runs in a savepoint, so a failure keeps the stored row, marked ``failed``
    with the reason. (The SMTP receiver answers 250 after :func:`store` commits and processes
    later, with :func:`process`.)"""
    try:
        with database.transaction() as session:
            stored = _store_in(
                session, raw, source=source, settings=settings, refuse_oversize=refuse_oversize
            )
            if stored.status != InboundStatus.PENDING.value:
                return IngestResult(stored.raw_inbound_id, stored.duplicate, stored.status)
            try:
                with session.begin_nested():
                    result = _process_in(session, stored.raw_inbound_id, settings)
            except Exception as error:
                log.exception("processing inbound email %s failed", stored.raw_inbound_id)
                inbound.mark_failed(session, stored.raw_inbound_id, f"{type(error).__name__}: {error}")
                return IngestResult(stored.raw_inbound_id, stored.duplicate, "failed")
            return IngestResult(result.raw_inbound_id, stored.duplicate, result.status, result.ticket_id)
    except IntegrityError:
        # The same message arrived twice at once and the other copy won the unique key: the two
        # steps, as the SMTP receiver takes them, find it stored.
        stored = store(database, raw, source=source, settings=settings, refuse_oversize=refuse_oversize)
        if stored.status != InboundStatus.PENDING.value:
            return IngestResult(stored.raw_inbound_id, stored.duplicate, stored.status)
        result = process(database, stored.raw_inbound_id, settings)
        return IngestResult(result.raw_inbound_id, stored.duplicate, result.status, result.ticket_id)


def resume_pending(database: Database, settings: Settings) -> int:
    """Process every stored-but-unprocessed email (after a crash or restart). Returns how many."""
    seen: set[int] = set()  # each row is tried once per resume, so a failing row cannot loop
    while True:
        with database.transaction(write=False) as session:
            ids = [raw_id for raw_id in inbound.pending_raw_ids(session) if raw_id not in seen]
        if not ids:
            return len(seen)
        for raw_inbound_id in ids:
            seen.add(raw_inbound_id)
            process(database, raw_inbound_id, settings)
