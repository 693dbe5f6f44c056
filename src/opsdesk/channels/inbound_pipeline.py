"""The two steps every inbound email takes, each in its own transaction: store, then process.

Invariants: the raw bytes are committed before processing starts, so a crash at any point loses
nothing (:func:`resume_pending` picks up what was stored but not processed); a failure while
processing rolls back that step only and marks the stored row ``failed`` with the reason; a
repeat of a stored message is answered as accepted without being stored or processed again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from opsdesk.channels.enums import InboundStatus
from opsdesk.channels.service import inbound
from opsdesk.channels.service.outbound import queue_receipt
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


def store(
    database: Database, raw: bytes, *, source: str, settings: Settings, refuse_oversize: bool = True
) -> inbound.StoredInbound:
    """Commit the raw message (raises MessageTooLargeError before storing when over the limit)."""
    try:
        with database.transaction() as session:
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
    except IntegrityError:
        # The same message arrived twice at once; the other copy won the unique key.
        with database.transaction() as session:
            return inbound.store_raw_email(
                session,
                raw,
                source=source,
                max_bytes=settings.inbound_email_max_bytes,
                refuse_oversize=refuse_oversize,
            )


def process(database: Database, raw_inbound_id: int, settings: Settings) -> IngestResult:
    try:
        with database.transaction() as session:
            outcome = inbound.process_raw_email(session, raw_inbound_id, settings)
            if outcome.send_receipt and outcome.ticket_id is not None:
                queue_receipt(session, session.get_one(Ticket, outcome.ticket_id), settings)
            return IngestResult(raw_inbound_id, False, outcome.status, outcome.ticket_id)
    except Exception as error:  # any failure: keep the reason on the stored row, lose nothing
        log.exception("processing inbound email %s failed", raw_inbound_id)
        with database.transaction() as session:
            inbound.mark_failed(session, raw_inbound_id, f"{type(error).__name__}: {error}")
        return IngestResult(raw_inbound_id, False, "failed")


def ingest_email(
    database: Database, raw: bytes, *, source: str, settings: Settings, refuse_oversize: bool = True
) -> IngestResult:
    stored = store(database, raw, source=source, settings=settings, refuse_oversize=refuse_oversize)
    if stored.duplicate and stored.status != "pending":
        return IngestResult(stored.raw_inbound_id, True, stored.status)
    if stored.status != "pending":
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
