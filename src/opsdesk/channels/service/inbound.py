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
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message as EmailHeaders
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.channels.email_parsing import ParsedEmail, addresses_in, message_ids_in, parse_email
from opsdesk.channels.email_threading import ThreadClues, clean_subject, thread_clues
from opsdesk.channels.enums import InboundStatus, NoiseKind, OutboundKind
from opsdesk.channels.errors import MessageTooLargeError
from opsdesk.channels.models import OutboundEmail, RawInbound
from opsdesk.channels.noise import classify_noise, is_automated
from opsdesk.channels.quoting import strip_reply_html, strip_reply_text
from opsdesk.channels.service.outbound import brand_for_recipients, queue_refusal, set_ticket_brand
from opsdesk.config import Settings
from opsdesk.tickets import service as tickets
from opsdesk.tickets.enums import Channel, StatusCategory
from opsdesk.tickets.errors import AttachmentTooLargeError
from opsdesk.tickets.models import Attachment, Message, PersonEmail, Ticket
from opsdesk.tickets.service.attachments import AttachmentStore

EMAIL_ACTOR = Actor.integration("email", via=Channel.EMAIL.value)
_HEADER_PARSER = BytesHeaderParser(policy=compat32)


@dataclass(frozen=True, slots=True)
class StoredInbound:
    raw_inbound_id: int
    duplicate: bool
    status: str


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
    brand_id: int | None = None


def email_dedupe_key(raw: bytes) -> tuple[str, str]:
    """(dedupe key, sender) from the headers alone: cheap enough to run before storing."""
    headers = _HEADER_PARSER.parsebytes(raw)
    ids = message_ids_in(str(headers.get("Message-ID", "") or ""))
    key = f"email:{ids[0]}" if ids else f"email-sha256:{hashlib.sha256(raw).hexdigest()}"
    sender = str(headers.get("From", "") or "")
    return key[:600], sender


def store_raw_email(
    session: Session, raw: bytes, *, source: str, max_bytes: int, refuse_oversize: bool = True
) -> StoredInbound:
    """Keep the message as it arrived. Over ``max_bytes`` it is refused (nothing stored) unless
    the caller cannot refuse it (IMAP: it is already in the mailbox), then stored as ``refused``."""
    if len(raw) > max_bytes and refuse_oversize:
        raise MessageTooLargeError(
            f"the message is {len(raw)} bytes; the limit is {max_bytes} bytes",
        )
    headers = _HEADER_PARSER.parsebytes(raw)
    ids = message_ids_in(str(headers.get("Message-ID", "") or ""))
    key = (f"email:{ids[0]}" if ids else f"email-sha256:{hashlib.sha256(raw).hexdigest()}")[:600]
    existing = session.scalars(select(RawInbound).where(RawInbound.dedupe_key == key)).first()
    if existing is not None:
        return StoredInbound(existing.id, duplicate=True, status=existing.status)
    parsed_sender = _sender_in(headers)
    row = RawInbound(
        channel=Channel.EMAIL.value,
        source=source[:120],
        dedupe_key=key,
        sender=parsed_sender[:320],
        raw=raw,
        size_bytes=len(raw),
        received_at=clock.now(),
        status=(InboundStatus.REFUSED if len(raw) > max_bytes else InboundStatus.PENDING).value,
        error=(
            f"the message is {len(raw)} bytes; the limit is {max_bytes} bytes"
            if len(raw) > max_bytes
            else None
        ),
    )
    session.add(row)
    session.flush()
    return StoredInbound(row.id, duplicate=False, status=row.status)


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


def parse_sender(raw: bytes) -> str:
    return _sender_in(_HEADER_PARSER.parsebytes(raw))


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


def process_raw_email(session: Session, raw_inbound_id: int, settings: Settings) -> ProcessedEmail:
    """Turn a stored message into a ticket or a message on the ticket it threads to."""
    row = session.get_one(RawInbound, raw_inbound_id)
    if row.status not in (InboundStatus.PENDING.value, InboundStatus.FAILED.value):
        return ProcessedEmail(row.id, row.status, row.ticket_id, row.message_id, False, row.noise_kind, False)
    row.attempts = (row.attempts or 0) + 1
    parsed = parse_email(row.raw or b"")
    noise = classify_noise(parsed)
    row.noise_kind = noise.value
    clues = thread_clues(parsed)
    if not parsed.from_address:
        return _finish(row, InboundStatus.FAILED, error="the message has no sender address")
    if _over_throttle(session, row, settings):
        return _finish(
            row,
            InboundStatus.THROTTLED,
            error=(
                f"{parsed.from_address} sent more than {settings.email_throttle_count} messages in "
                f"{settings.email_throttle_window_seconds} seconds"
            ),
        )
    ticket = find_thread(session, parsed, clues)
    if is_automated(noise):
        return _note_automated(session, row, parsed, noise, ticket)
    store = AttachmentStore(settings.attachments_dir, settings.attachment_max_bytes)
    attachments, omitted = _save_attachments(store, parsed)
    body_text = strip_reply_text(parsed.text) if ticket is not None else parsed.text.strip()
    body_html = parsed.html
    if body_html is not None and ticket is not None:
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
            ticket_id=ticket.id if ticket is not None else None,
            attachments=attachments,
        ),
    )
    row.ticket_id = received.ticket.id
    row.message_id = received.message.id
    brand = None
    if received.created:
        brand = brand_for_recipients(session, parsed.recipients)
        if brand is not None:
            set_ticket_brand(session, received.ticket.id, brand.id)
    outcome = _finish(row, InboundStatus.PROCESSED)
    return ProcessedEmail(
        row.id,
        outcome.status,
        received.ticket.id,
        received.message.id,
        received.created,
        noise.value,
        send_receipt=received.created and not received.duplicate and noise is NoiseKind.NONE,
        sender=parsed.from_address,
        brand_id=brand.id if brand is not None else None,
    )


def mark_failed(session: Session, raw_inbound_id: int, error: str) -> None:
    """Record why processing raised (in a fresh transaction: the failed one rolled back)."""
    row = session.get_one(RawInbound, raw_inbound_id)
    row.status = InboundStatus.FAILED.value
    row.error = error[:2000]
    row.attempts = (row.attempts or 0) + 1
    session.flush()


def find_thread(session: Session, parsed: ParsedEmail, clues: ThreadClues) -> Ticket | None:
    """The ticket an email belongs to, by the clues of :mod:`opsdesk.channels.email_threading`."""
    if clues.message_ids:
        found: dict[str, int] = {}
        for external_id, ticket_id in session.execute(
            select(Message.external_id, Message.ticket_id).where(Message.external_id.in_(clues.message_ids))
        ):
            if external_id is not None:
                found[external_id] = ticket_id
        for rfc_id, outbound_ticket_id in session.execute(
            select(OutboundEmail.rfc_message_id, OutboundEmail.ticket_id).where(
                OutboundEmail.rfc_message_id.in_(clues.message_ids)
            )
        ):
            if outbound_ticket_id is not None:
                found.setdefault(rfc_id, outbound_ticket_id)
        for candidate in clues.message_ids:
            if candidate in found:
                return session.get(Ticket, found[candidate])
    if clues.reply_tokens:
        ticket = session.scalars(select(Ticket).where(Ticket.reply_token.in_(clues.reply_tokens))).first()
        if ticket is not None:
            return ticket
    for ticket_id in clues.subject_ticket_ids:
        ticket = session.get(Ticket, ticket_id)
        if ticket is not None and _sender_belongs_to(session, ticket, parsed.from_address):
            return ticket
    return None


def _sender_belongs_to(session: Session, ticket: Ticket, address: str) -> bool:
    """A subject tag alone is easy to forge: only the requester or someone already on the
    ticket may thread by it."""
    person_id = session.scalar(select(PersonEmail.person_id).where(PersonEmail.email == address))
    if person_id is None:
        return False
    if person_id == ticket.requester_id:
        return True
    on_ticket = session.scalar(
        select(func.count()).where(Message.ticket_id == ticket.id, Message.author_person_id == person_id)
    )
    return bool(on_ticket)


def _over_throttle(session: Session, row: RawInbound, settings: Settings) -> bool:
    if not row.sender:
        return False
    since = row.received_at - timedelta(seconds=settings.email_throttle_window_seconds)
    earlier = session.scalar(
        select(func.count()).where(
            RawInbound.sender == row.sender,
            RawInbound.channel == Channel.EMAIL.value,
            RawInbound.received_at >= since,
            RawInbound.id < row.id,
            RawInbound.status.in_(
                [InboundStatus.PROCESSED.value, InboundStatus.THROTTLED.value, InboundStatus.PENDING.value]
            ),
        )
    )
    return int(earlier or 0) >= settings.email_throttle_count


def _note_automated(
    session: Session, row: RawInbound, parsed: ParsedEmail, noise: NoiseKind, ticket: Ticket | None
) -> ProcessedEmail:
    if noise is NoiseKind.BOUNCE:
        for outbound in session.scalars(
            select(OutboundEmail).where(
                OutboundEmail.rfc_message_id.in_(parsed.embedded_message_ids or ("",))
            )
        ):
            outbound.status = "bounced"
    if ticket is None or ticket.status == StatusCategory.CLOSED.value:
        return _finish(row, InboundStatus.IGNORED, error=f"{noise.value} that threads to no open ticket")
    label = "Delivery failure" if noise is NoiseKind.BOUNCE else "Automatic reply"
    text = f"{label} from {parsed.from_address}: {parsed.subject}\n\n{strip_reply_text(parsed.text)}"
    message = tickets.add_message(
        session, EMAIL_ACTOR, ticket, body_text=text[:50_000], public=False, channel=Channel.EMAIL.value
    )
    row.ticket_id = ticket.id
    row.message_id = message.id
    outcome = _finish(row, InboundStatus.PROCESSED)
    return ProcessedEmail(row.id, outcome.status, ticket.id, message.id, False, noise.value, False)


def _save_attachments(store: AttachmentStore, parsed: ParsedEmail) -> tuple[list[Attachment], list[str]]:
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


def _finish(row: RawInbound, status: InboundStatus, *, error: str | None = None) -> ProcessedEmail:
    row.status = status.value
    row.error = error
    row.processed_at = clock.now()
    return ProcessedEmail(row.id, status.value, row.ticket_id, row.message_id, False, row.noise_kind, False)
