"""Inbound email: store the raw message, then process it onto exactly one ticket.

Invariants:
- :func:`store_raw_email` writes the bytes before anything reads them; a second copy of the same
  Message-ID (a retry after a crash, the same mail seen over SMTP and IMAP) is recognised and
  stored once;
- :func:`process_raw_email` is idempotent: it works only on rows still ``pending`` (or ``failed``)
  and the ticket service dedupes by the Message-ID again, so a row processed twice after a crash
  still yields one message;
- automated mail (auto-replies, bounces) never opens a ticket and never causes an automatic reply;
  a sender over the throttle is kept (status ``throttled``) but not turned into tickets.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message as EmailHeaders
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, literal, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.channels.email_parsing import (
    ParsedEmail,
    addresses_in,
    message_ids_in,
    parse_email,
    parse_mime,
    parsed_from_mime,
)
from opsdesk.channels.email_threading import ThreadClues, clean_subject, thread_clues
from opsdesk.channels.enums import InboundStatus, NoiseKind, OutboundKind
from opsdesk.channels.errors import MessageTooLargeError
from opsdesk.channels.models import OutboundEmail, RawInbound
from opsdesk.channels.noise import classify_noise, is_automated
from opsdesk.channels.quoting import strip_reply_html, strip_reply_text
from opsdesk.channels.service.brand_snapshots import EmailBrandInfo
from opsdesk.channels.service.outbound import (
    NewTicketFacts,
    brand_for_recipients,
    queue_refusal,
    set_ticket_brand,
)
from opsdesk.config import Settings
from opsdesk.tickets import service as tickets
from opsdesk.tickets.enums import Channel, StatusCategory
from opsdesk.tickets.errors import AttachmentTooLargeError
from opsdesk.tickets.models import Attachment, Message, PersonEmail, Ticket
from opsdesk.tickets.service.attachments import AttachmentStore

log = logging.getLogger(__name__)
EMAIL_ACTOR = Actor.integration("email", via=Channel.EMAIL.value)
_HEADER_PARSER = BytesHeaderParser(policy=compat32)


@dataclass(frozen=True, slots=True)
class StoredInbound:
    raw_inbound_id: int
    duplicate: bool
    status: str
    # What processing reads of a row this call stored, so it need not load the row again.
    pending: PendingInbound | None = None


@dataclass(frozen=True, slots=True)
class PendingInbound:
    """The columns of a stored row that processing reads."""

    raw_inbound_id: int
    raw: bytes
    sender: str
    received_at: datetime
    attempts: int
    mime: EmailHeaders | None = None  # the MIME tree, when the store parsed it already


@dataclass(frozen=True, slots=True)
class ProcessedEmail:
    raw_inbound_id: int
    status: str
    ticket_id: int | None
    message_id: int | None
    created_ticket: bool
    noise_kind: str
    send_receipt: bool  # a new ticket from a person (not noise, not throttled): acknowledge it
    sender: str = ""
    brand: EmailBrandInfo | None = None
    new_ticket: NewTicketFacts | None = None  # set when a receipt is due


# Statements built once: their compiled form and cache key are reused for every email.
_RAW = cast(Table, RawInbound.__table__)
_INSERTS_IGNORING_DUPLICATES: dict[str, Any] = {}
_EXISTING_BY_KEY = select(_RAW.c.id, _RAW.c.status).where(_RAW.c.dedupe_key == bindparam("key"))
_PENDING_BY_ID = select(
    _RAW.c.status,
    _RAW.c.raw,
    _RAW.c.sender,
    _RAW.c.received_at,
    _RAW.c.attempts,
    _RAW.c.ticket_id,
    _RAW.c.message_id,
    _RAW.c.noise_kind,
).where(_RAW.c.id == bindparam("id"))
_FINISH = (
    update(_RAW)
    .where(_RAW.c.id == bindparam("row_id"))
    .values(
        status=bindparam("status"),
        error=bindparam("error"),
        processed_at=bindparam("processed_at"),
        noise_kind=bindparam("noise_kind"),
        attempts=bindparam("attempts"),
        ticket_id=bindparam("ticket_id"),
        message_id=bindparam("message_id"),
    )
)
_MARK_FAILED = (
    update(_RAW)
    .where(_RAW.c.id == bindparam("row_id"))
    .values(status=InboundStatus.FAILED.value, error=bindparam("error"), attempts=_RAW.c.attempts + 1)
)
_COUNTED_BY_THROTTLE = (
    InboundStatus.PROCESSED.value,
    InboundStatus.THROTTLED.value,
    InboundStatus.PENDING.value,
)
# At most ``limit`` rows are counted: the (sender, received_at) index finds them and a sender
# far over the limit costs no more than one at it.
_EARLIER_FROM_SENDER = select(func.count()).select_from(
    select(literal(1))
    .where(
        _RAW.c.sender == bindparam("sender"),
        _RAW.c.received_at >= bindparam("since"),
        _RAW.c.channel == Channel.EMAIL.value,
        _RAW.c.id < bindparam("row_id"),
        _RAW.c.status.in_(_COUNTED_BY_THROTTLE),
    )
    .limit(bindparam("limit"))
    .subquery()
)
_MESSAGES = cast(Table, Message.__table__)
_OUTBOUND = cast(Table, OutboundEmail.__table__)
_TICKETS = cast(Table, Ticket.__table__)
_PERSON_EMAILS = cast(Table, PersonEmail.__table__)
# Customers' stored Message-IDs first, then the ones opsdesk sent (0 sorts before 1).
_TICKETS_BY_MESSAGE_ID = union_all(
    select(_MESSAGES.c.external_id, _MESSAGES.c.ticket_id, literal(0).label("source")).where(
        _MESSAGES.c.external_id.in_(bindparam("ids", expanding=True))
    ),
    select(_OUTBOUND.c.rfc_message_id, _OUTBOUND.c.ticket_id, literal(1).label("source")).where(
        _OUTBOUND.c.rfc_message_id.in_(bindparam("ids", expanding=True)),
        _OUTBOUND.c.ticket_id.is_not(None),
    ),
)
_TICKET_BY_REPLY_TOKEN = (
    select(_TICKETS.c.id)
    .where(_TICKETS.c.reply_token.in_(bindparam("tokens", expanding=True)))
    .order_by(_TICKETS.c.id)
    .limit(1)
)
_TICKET_REQUESTER = select(_TICKETS.c.requester_id).where(_TICKETS.c.id == bindparam("id"))
_PERSON_BY_EMAIL = select(_PERSON_EMAILS.c.person_id).where(_PERSON_EMAILS.c.email == bindparam("email"))
_MESSAGES_BY_AUTHOR = select(func.count()).where(
    _MESSAGES.c.ticket_id == bindparam("ticket_id"), _MESSAGES.c.author_person_id == bindparam("person_id")
)


def _insert_ignoring_duplicates(dialect: str) -> Any:
    """``INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id``: one statement stores a new
    message, and a repeat (even one committed by another writer a moment ago) returns no row."""
    statement = _INSERTS_IGNORING_DUPLICATES.get(dialect)
    if statement is None:
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            insert(_RAW).on_conflict_do_nothing(index_elements=[_RAW.c.dedupe_key]).returning(_RAW.c.id)
        )
        _INSERTS_IGNORING_DUPLICATES[dialect] = statement
    return statement


def _dedupe_key(headers: EmailHeaders, raw: bytes) -> str:
    ids = message_ids_in(str(headers.get("Message-ID", "") or ""))
    return (f"email:{ids[0]}" if ids else f"email-sha256:{hashlib.sha256(raw).hexdigest()}")[:600]


def store_raw_email(
    session: Session,
    raw: bytes,
    *,
    source: str,
    max_bytes: int,
    refuse_oversize: bool = True,
    parse_now: bool = False,
) -> StoredInbound:
    """Keep the message as it arrived. Over ``max_bytes`` it is refused (nothing stored) unless
    the caller cannot refuse it (IMAP: it is already in the mailbox), then stored as ``refused``.
    ``parse_now``: the caller processes the message right away, so its whole MIME tree is parsed
    once here (its headers give the dedupe key) and handed on; else only the headers are read."""
    oversize = len(raw) > max_bytes
    if oversize and refuse_oversize:
        raise MessageTooLargeError(
            f"the message is {len(raw)} bytes; the limit is {max_bytes} bytes",
        )
    mime: EmailHeaders | None = None
    if parse_now and not oversize:
        try:
            mime = parse_mime(raw)
        except Exception:  # the message is still stored; processing parses again and says why
            log.exception("parsing an inbound email before storing it failed")
    headers = mime if mime is not None else _HEADER_PARSER.parsebytes(raw)
    key = _dedupe_key(headers, raw)
    sender = _sender_in(headers)[:320]
    status = (InboundStatus.REFUSED if oversize else InboundStatus.PENDING).value
    received_at = clock.now()
    connection = session.connection()
    inserted = connection.execute(
        _insert_ignoring_duplicates(connection.dialect.name),
        {
            "channel": Channel.EMAIL.value,
            "source": source[:120],
            "dedupe_key": key,
            "sender": sender,
            "raw": raw,
            "size_bytes": len(raw),
            "received_at": received_at,
            "status": status,
            "noise_kind": NoiseKind.NONE.value,
            "error": f"the message is {len(raw)} bytes; the limit is {max_bytes} bytes" if oversize else None,
            "attempts": 0,
        },
    ).scalar()
    if inserted is None:
        existing_id, existing_status = connection.execute(_EXISTING_BY_KEY, {"key": key}).one()
        return StoredInbound(existing_id, duplicate=True, status=existing_status)
    return StoredInbound(
        inserted,
        duplicate=False,
        status=status,
        pending=PendingInbound(inserted, raw, sender, received_at, 0, mime),
    )


def tell_sender_refused(session: Session, raw_inbound_id: int, settings: Settings) -> bool:
    """Email the sender of a refused (oversize) message why it was refused, unless the sender is
    automated (auto-replies, bounces, mailer-daemons, bulk mail: answering them starts loops) or
    was already told once within the throttle window. Returns whether a refusal was queued."""
    row = session.get_one(RawInbound, raw_inbound_id)
    raw = row.raw or b""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw[: end if end >= 0 else len(raw)]
    parsed = parse_email(head + b"\r\n\r\n")
    reason = row.error or "the message is over the size limit"
    noise = classify_noise(parsed)
    if noise is not NoiseKind.NONE or not parsed.from_address:
        row.noise_kind = noise.value
        row.error = f"{reason}; no refusal sent ({noise.value if parsed.from_address else 'no sender'})"
        return False
    since = clock.now() - timedelta(seconds=settings.email_throttle_window_seconds)
    told = session.scalar(
        select(func.count()).where(
            OutboundEmail.kind == OutboundKind.REFUSAL.value,
            OutboundEmail.to_address == parsed.from_address,
            OutboundEmail.created_at >= since,
        )
    )
    if told:
        row.error = f"{reason}; no refusal sent (the sender was told within the last minutes)"
        return False
    queue_refusal(
        session,
        to_address=parsed.from_address,
        recipients=parsed.recipients,
        subject=parsed.subject,
        refused_message_id=parsed.message_id if parsed.has_own_message_id else None,
        reason=reason,
        settings=settings,
    )
    row.error = f"{reason}; the sender was told by email"
    return True


def _sender_in(headers: EmailHeaders) -> str:
    for name in ("From", "Reply-To", "Sender", "Return-Path"):
        values = [str(value) for value in headers.get_all(name, [])]
        found = addresses_in(values)
        if found:
            return found[0][1]
    return ""


MAX_PROCESSING_ATTEMPTS = 5


def pending_raw_ids(session: Session, *, channel: str = Channel.EMAIL.value, limit: int = 500) -> list[int]:
    """Rows stored but not processed (a crash between the two steps leaves them here), and rows
    whose processing failed fewer than ``MAX_PROCESSING_ATTEMPTS`` times (a fix may help them)."""
    return list(
        session.scalars(
            select(RawInbound.id)
            .where(
                RawInbound.channel == channel,
                (RawInbound.status == InboundStatus.PENDING.value)
                | (
                    (RawInbound.status == InboundStatus.FAILED.value)
                    & (RawInbound.attempts < MAX_PROCESSING_ATTEMPTS)
                ),
            )
            .order_by(RawInbound.id)
            .limit(limit)
        )
    )


def load_pending(
    session: Session, raw_inbound_id: int
) -> tuple[PendingInbound | None, ProcessedEmail | None]:
    """The row to process, or (when it is no longer pending or failed) what became of it."""
    status, raw, sender, received_at, attempts, ticket_id, message_id, noise_kind = (
        session.connection().execute(_PENDING_BY_ID, {"id": raw_inbound_id}).one()
    )
    if status not in (InboundStatus.PENDING.value, InboundStatus.FAILED.value):
        return None, ProcessedEmail(raw_inbound_id, status, ticket_id, message_id, False, noise_kind, False)
    return PendingInbound(raw_inbound_id, raw or b"", sender or "", received_at, attempts or 0), None


def process_raw_email(
    session: Session, raw_inbound_id: int, settings: Settings, pending: PendingInbound | None = None
) -> ProcessedEmail:
    """Turn a stored message into a ticket or a message on the ticket it threads to.
    ``pending``: the row as :func:`store_raw_email` just stored it (else it is loaded)."""
    if pending is None or pending.raw_inbound_id != raw_inbound_id:
        pending, done = load_pending(session, raw_inbound_id)
        if pending is None:
            assert done is not None
            return done
    parsed = (
        parsed_from_mime(pending.mime, pending.raw) if pending.mime is not None else parse_email(pending.raw)
    )
    noise = classify_noise(parsed)
    connection = session.connection()  # the transaction's one connection, for Core statements
    finish = _Finisher(connection, pending, noise)
    if not parsed.from_address:
        return finish(InboundStatus.FAILED, error="the message has no sender address")
    if _over_throttle(connection, pending, settings):
        return finish(
            InboundStatus.THROTTLED,
            error=(
                f"{parsed.from_address} sent more than {settings.email_throttle_count} messages in "
                f"{settings.email_throttle_window_seconds} seconds"
            ),
        )
    ticket_id = find_thread(session, parsed, thread_clues(parsed))
    if is_automated(noise):
        return _note_automated(session, finish, parsed, noise, ticket_id)
    attachments, omitted = _save_attachments(settings, parsed)
    body_text = strip_reply_text(parsed.text) if ticket_id is not None else parsed.text.strip()
    body_html = parsed.html
    if body_html is not None and ticket_id is not None:
        body_html = strip_reply_html(body_html)
    if omitted:
        body_text = "\n\n".join([body_text, *omitted]).strip()
        body_html = None if body_html is None else body_html + "".join(f"<p>{line}</p>" for line in omitted)
    if not body_text.strip() and not attachments:
        body_text = "(no text)"
    received = tickets.receive(
        session,
        EMAIL_ACTOR,
        tickets.IncomingMessage(
            channel=Channel.EMAIL.value,
            from_email=parsed.from_address,
            from_name=parsed.from_name,
            subject=clean_subject(parsed.subject) or None,
            body_text=body_text,
            body_html=body_html,
            external_id=parsed.message_id[:500],
            ticket_id=ticket_id,
            attachments=attachments,
        ),
    )
    brand = None
    if received.created:
        brand = brand_for_recipients(session, parsed.recipients)
        if brand is not None:
            set_ticket_brand(session, received.ticket.id, brand.id)
    outcome = finish(InboundStatus.PROCESSED, ticket_id=received.ticket.id, message_id=received.message.id)
    send_receipt = received.created and not received.duplicate and noise is NoiseKind.NONE
    return ProcessedEmail(
        pending.raw_inbound_id,
        outcome.status,
        received.ticket.id,
        received.message.id,
        received.created,
        noise.value,
        send_receipt=send_receipt,
        sender=parsed.from_address,
        brand=brand,
        new_ticket=(
            NewTicketFacts(
                received.ticket.id,
                received.ticket.subject,
                received.ticket.reply_token,
                received.ticket.requester.name,
            )
            if send_receipt
            else None
        ),
    )


def mark_failed(session: Session, raw_inbound_id: int, error: str) -> None:
    """Record why processing raised (in a fresh transaction or savepoint: the failed one rolled
    back)."""
    session.connection().execute(_MARK_FAILED, {"row_id": raw_inbound_id, "error": error[:2000]})


def find_thread(session: Session, parsed: ParsedEmail, clues: ThreadClues) -> int | None:
    """The id of the ticket an email belongs to, by the clues of
    :mod:`opsdesk.channels.email_threading` (strongest first)."""
    connection = session.connection()
    if clues.message_ids:
        found: dict[str, tuple[int, int]] = {}
        for external_id, ticket_id, source in connection.execute(
            _TICKETS_BY_MESSAGE_ID, {"ids": list(clues.message_ids)}
        ):
            if external_id is not None and (external_id not in found or source < found[external_id][0]):
                found[external_id] = (source, ticket_id)
        for candidate in clues.message_ids:
            if candidate in found:
                return found[candidate][1]
    if clues.reply_tokens:
        ticket_id = connection.execute(_TICKET_BY_REPLY_TOKEN, {"tokens": list(clues.reply_tokens)}).scalar()
        if ticket_id is not None:
            return int(ticket_id)
    for ticket_id in clues.subject_ticket_ids:
        requester_id = connection.execute(_TICKET_REQUESTER, {"id": ticket_id}).scalar()
        if requester_id is not None and _sender_belongs_to(
            session, ticket_id, requester_id, parsed.from_address
        ):
            return ticket_id
    return None


def _sender_belongs_to(session: Session, ticket_id: int, requester_id: int, address: str) -> bool:
    """A subject tag alone is easy to forge: only the requester or someone already on the
    ticket may thread by it."""
    connection = session.connection()
    person_id = connection.execute(_PERSON_BY_EMAIL, {"email": address}).scalar()
    if person_id is None:
        return False
    if person_id == requester_id:
        return True
    on_ticket = connection.execute(
        _MESSAGES_BY_AUTHOR, {"ticket_id": ticket_id, "person_id": person_id}
    ).scalar()
    return bool(on_ticket)


def _over_throttle(connection: Connection, pending: PendingInbound, settings: Settings) -> bool:
    if not pending.sender:
        return False
    earlier = connection.execute(
        _EARLIER_FROM_SENDER,
        {
            "sender": pending.sender,
            "since": pending.received_at - timedelta(seconds=settings.email_throttle_window_seconds),
            "row_id": pending.raw_inbound_id,
            "limit": settings.email_throttle_count,
        },
    ).scalar()
    return int(earlier or 0) >= settings.email_throttle_count


def _note_automated(
    session: Session, finish: _Finisher, parsed: ParsedEmail, noise: NoiseKind, ticket_id: int | None
) -> ProcessedEmail:
    if noise is NoiseKind.BOUNCE:
        session.execute(
            update(OutboundEmail)
            .where(OutboundEmail.rfc_message_id.in_(parsed.embedded_message_ids or ("",)))
            .values(status="bounced")
        )
    ticket = session.get(Ticket, ticket_id) if ticket_id is not None else None
    if ticket is None or ticket.status == StatusCategory.CLOSED.value:
        return finish(InboundStatus.IGNORED, error=f"{noise.value} that threads to no open ticket")
    label = "Delivery failure" if noise is NoiseKind.BOUNCE else "Automatic reply"
    text = f"{label} from {parsed.from_address}: {parsed.subject}\n\n{strip_reply_text(parsed.text)}"
    message = tickets.add_message(
        session, EMAIL_ACTOR, ticket, body_text=text[:50_000], public=False, channel=Channel.EMAIL.value
    )
    return finish(InboundStatus.PROCESSED, ticket_id=ticket.id, message_id=message.id)


def _save_attachments(settings: Settings, parsed: ParsedEmail) -> tuple[list[Attachment], list[str]]:
    if not parsed.attachments:
        return [], []
    store = AttachmentStore(settings.attachments_dir, settings.attachment_max_bytes)
    saved: list[Attachment] = []
    omitted: list[str] = []
    for item in parsed.attachments:
        try:
            saved.append(store.save(item.filename, item.content_type, item.data, inline=item.inline))
        except AttachmentTooLargeError:
            omitted.append(
                f"[attachment {item.filename} ({len(item.data)} bytes) was not kept: "
                f"the limit is {store.max_bytes} bytes; the original email keeps it]"
            )
    return saved, omitted


class _Finisher:
    """Writes what became of a row (status, reason, ticket, message, noise kind) in one UPDATE."""

    __slots__ = ("_connection", "_noise", "_pending")

    def __init__(self, connection: Connection, pending: PendingInbound, noise: NoiseKind) -> None:
        self._connection = connection
        self._pending = pending
        self._noise = noise

    def __call__(
        self,
        status: InboundStatus,
        *,
        error: str | None = None,
        ticket_id: int | None = None,
        message_id: int | None = None,
    ) -> ProcessedEmail:
        self._connection.execute(
            _FINISH,
            {
                "row_id": self._pending.raw_inbound_id,
                "status": status.value,
                "error": error,
                "processed_at": clock.now(),
                "noise_kind": self._noise.value,
                "attempts": self._pending.attempts + 1,
                "ticket_id": ticket_id,
                "message_id": message_id,
            },
        )
        return ProcessedEmail(
            self._pending.raw_inbound_id, status.value, ticket_id, message_id, False, self._noise.value, False
        )
