"""The public support form (``/support/new``): a request becomes a ticket and a receipt email.

Invariants: the submission is validated first (a refused one changes nothing and says why, field
by field); a filled honeypot field is refused with a readable reason and stored nowhere; a client
address that submitted ``support_form_per_ten_minutes`` times in ten minutes is refused until the
window passes; an accepted submission is stored (``raw_inbound``) before it becomes a ticket
(channel ``web``) with its attachments, and the requester gets a receipt by email.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.channels.enums import InboundStatus
from opsdesk.channels.models import RawInbound
from opsdesk.channels.service.outbound import queue_receipt
from opsdesk.config import Settings
from opsdesk.errors import DomainError, FieldProblem, ValidationFailedError
from opsdesk.tickets import service as tickets
from opsdesk.tickets.enums import Channel
from opsdesk.tickets.models import Attachment, Ticket
from opsdesk.tickets.service.attachments import AttachmentStore
from opsdesk.tickets.service.people import normalize_email

FORM_ACTOR = Actor.integration("support form", via=Channel.WEB.value)
MAX_FILES = 5
WINDOW = timedelta(minutes=10)


class TooManyRequestsError(DomainError):
    code = "too_many_requests"
    status = 429
    title = "Too many requests"


class InvalidSupportRequestError(ValidationFailedError):
    code = "invalid_support_request"


@dataclass(frozen=True, slots=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class SupportRequest:
    name: str
    email: str
    subject: str
    description: str
    honeypot: str = ""
    files: list[UploadedFile] = field(default_factory=list)


def validate(request: SupportRequest, settings: Settings) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    try:
        normalize_email(request.email)
    except ValidationFailedError:
        problems.append(FieldProblem(("email",), "Enter the email address we should answer to."))
    if not request.subject.strip():
        problems.append(FieldProblem(("subject",), "Say in a few words what this is about."))
    elif len(request.subject) > 200:
        problems.append(FieldProblem(("subject",), "Keep the subject under 200 characters."))
    if not request.description.strip():
        problems.append(FieldProblem(("description",), "Describe what happened or what you need."))
    elif len(request.description) > 50_000:
        problems.append(FieldProblem(("description",), "Keep the description under 50,000 characters."))
    if len(request.files) > MAX_FILES:
        problems.append(FieldProblem(("files",), f"Attach at most {MAX_FILES} files."))
    for upload in request.files:
        if len(upload.data) > settings.attachment_max_bytes:
            megabytes = settings.attachment_max_bytes // (1024 * 1024)
            problems.append(FieldProblem(("files",), f"{upload.filename} is larger than {megabytes} MB."))
    return problems


def check_rate(session: Session, client: str, settings: Settings) -> None:
    recent = session.scalar(
        select(func.count()).where(
            RawInbound.channel == Channel.WEB.value,
            RawInbound.source == f"form:{client}"[:120],
            RawInbound.received_at >= clock.now() - WINDOW,
        )
    )
    if int(recent or 0) >= settings.support_form_per_ten_minutes:
        raise TooManyRequestsError("Too many requests from your address. Please try again in ten minutes.")


HONEYPOT_REFUSAL = (
    "Your request was not sent: the form's hidden anti-spam field was filled in, which automatic "
    "form fillers do. Please reload this page, type your request yourself and send it again."
)


def store_request(
    session: Session, request: SupportRequest, client: str, settings: Settings
) -> RawInbound | None:
    """Validate, rate-limit and keep the submission. A filled honeypot is refused with a reason a
    person can act on (browser autofill sometimes fills hidden fields), and nothing is kept."""
    problems = validate(request, settings)
    if problems:
        raise InvalidSupportRequestError("Please correct the marked fields.", fields=problems)
    if request.honeypot.strip():
        raise InvalidSupportRequestError(HONEYPOT_REFUSAL, fields=[])
    check_rate(session, client, settings)
    store = AttachmentStore(settings.attachments_dir, settings.attachment_max_bytes)
    saved = [
        {
            "filename": item.filename,
            "content_type": item.content_type,
            "size": len(item.data),
            "sha256": store.save(item.filename, item.content_type, item.data).sha256,
        }
        for item in request.files
    ]
    row = RawInbound(
        channel=Channel.WEB.value,
        source=f"form:{client}"[:120],
        dedupe_key=f"web:{uuid.uuid4().hex}",
        sender=normalize_email(request.email),
        payload={
            "name": request.name.strip(),
            "email": normalize_email(request.email),
            "subject": request.subject.strip(),
            "description": request.description,
            "files": saved,
        },
        received_at=clock.now(),
        status=InboundStatus.PENDING.value,
    )
    session.add(row)
    session.flush()
    return row


def process_request(session: Session, raw_inbound_id: int, settings: Settings) -> Ticket:
    row = session.get_one(RawInbound, raw_inbound_id)
    payload = row.payload or {}
    store = AttachmentStore(settings.attachments_dir, settings.attachment_max_bytes)
    attachments: list[Attachment] = []
    for item in payload.get("files", []):
        data = (settings.attachments_dir / item["sha256"][:2] / item["sha256"]).read_bytes()
        attachments.append(store.save(item["filename"], item["content_type"], data))
    received = tickets.receive(
        session,
        FORM_ACTOR,
        tickets.IncomingMessage(
            channel=Channel.WEB.value,
            from_email=payload["email"],
            from_name=payload.get("name") or None,
            subject=payload["subject"],
            body_text=payload["description"],
            external_id=row.dedupe_key,
            attachments=attachments,
        ),
    )
    row.status = InboundStatus.PROCESSED.value
    row.ticket_id = received.ticket.id
    row.message_id = received.message.id
    row.processed_at = clock.now()
    if received.created:
        queue_receipt(session, received.ticket, settings)
    session.flush()
    return received.ticket
