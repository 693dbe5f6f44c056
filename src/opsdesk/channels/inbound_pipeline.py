"""The two steps every inbound email takes: store, then process.

Invariants: nothing is acknowledged to a sender before the raw bytes are committed. The SMTP
receiver commits the store, answers 250, then processes in a second transaction, so a crash after
the answer loses nothing (:func:`resume_pending` picks up what was stored but not processed).
Callers that acknowledge only after both steps (HTTP, IMAP) store and process in one transaction
(:func:`ingest_email`, one commit). Either way a failure while processing rolls back what the
processing did and keeps the stored row, ``failed`` with the reason; a repeat of a stored message
is answered as accepted without being stored or processed again.
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
    session: Session,
    raw: bytes,
    *,
    source: str,
    settings: Settings,
    refuse_oversize: bool,
    parse_now: bool = False,
) -> inbound.StoredInbound:
    stored = inbound.store_raw_email(
        session,
        raw,
        source=source,
        max_bytes=settings.inbound_email_max_bytes,
        refuse_oversize=refuse_oversize,
        parse_now=parse_now,
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


def _process_in(
    session: Session,
    raw_inbound_id: int,
    settings: Settings,
    pending: inbound.PendingInbound | None = None,
) -> IngestResult:
    outcome = inbound.process_raw_email(session, raw_inbound_id, settings, pending)
    if outcome.send_receipt and outcome.ticket_id is not None:
        if outcome.sender and outcome.new_ticket is not None:
            queue_receipt_for_new_email_ticket(
                session, outcome.new_ticket, outcome.sender, settings, outcome.brand
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
    message. A failure while processing rolls the attempt back and stores the message again on its
    own, marked ``failed`` with the reason (resumed later). (The SMTP receiver answers 250 after
    :func:`store` commits and processes later, with :func:`process`.)"""
    processing = False
    try:
        with database.transaction() as session:
            stored = _store_in(
                session,
                raw,
                source=source,
                settings=settings,
                refuse_oversize=refuse_oversize,
                parse_now=True,  # processed in this transaction: parse once for both steps
            )
            if stored.status != InboundStatus.PENDING.value:
                return IngestResult(stored.raw_inbound_id, stored.duplicate, stored.status)
            processing = True
            result = _process_in(session, stored.raw_inbound_id, settings, stored.pending)
            return IngestResult(result.raw_inbound_id, stored.duplicate, result.status, result.ticket_id)
    except IntegrityError as error:
        if processing:
            return _keep_failed(database, raw, error, source=source, settings=settings)
        # The same message arrived twice at once and the other copy won the unique key: the two
        # steps, as the SMTP receiver takes them, find it stored.
        stored = store(database, raw, source=source, settings=settings, refuse_oversize=refuse_oversize)
        if stored.status != InboundStatus.PENDING.value:
            return IngestResult(stored.raw_inbound_id, stored.duplicate, stored.status)
        result = process(database, stored.raw_inbound_id, settings)
        return IngestResult(result.raw_inbound_id, stored.duplicate, result.status, result.ticket_id)
    except Exception as error:  # processing failed: keep the message and the reason, lose nothing
        if not processing:
            raise  # storing failed: nothing was kept, and the caller tells the sender to retry
        return _keep_failed(database, raw, error, source=source, settings=settings)


def _keep_failed(
    database: Database, raw: bytes, error: Exception, *, source: str, settings: Settings
) -> IngestResult:
    """After processing raised (the whole attempt rolled back): store the message on its own and
    mark it ``failed`` with the reason, in a transaction of its own."""
    log.error("processing an inbound email failed", exc_info=error)
    stored = store(database, raw, source=source, settings=settings, refuse_oversize=False)
    if stored.status != InboundStatus.PENDING.value:
        return IngestResult(stored.raw_inbound_id, stored.duplicate, stored.status)
    with database.transaction() as session:
        inbound.mark_failed(session, stored.raw_inbound_id, f"{type(error).__name__}: {error}")
    return IngestResult(stored.raw_inbound_id, stored.duplicate, "failed")


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
