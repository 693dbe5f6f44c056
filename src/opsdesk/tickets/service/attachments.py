"""Attachments: bytes stored under the data directory, content-addressed by SHA-256; what staff
may upload (a size limit, at most :data:`MAX_FILES` per message, no executables or scripts); and
who may download one (whoever may see its ticket: :func:`access_attachment`).

Invariants: uploads are all checked before any is stored, so a refused upload stores nothing of
that message; an attachment not on a message, or on a ticket the actor may not see, is
not-found; a download is served as an attachment (not rendered) unless its type is one a browser
shows safely (:data:`INLINE_TYPES`), with the name reduced to safe characters.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem, ValidationFailedError
from opsdesk.tickets.errors import (
    AttachmentNotFoundError,
    AttachmentTooLargeError,
    AttachmentTypeRefusedError,
    TicketNotFoundError,
)
from opsdesk.tickets.models import Attachment, Message, Ticket
from opsdesk.tickets.service.access import access_ticket

MAX_FILES = 10
# Programs and scripts a recipient could run by opening them.
REFUSED_EXTENSIONS = frozenset(
    {
        ".exe", ".dll", ".com", ".bat", ".cmd", ".scr", ".pif", ".cpl", ".msi", ".msp", ".msc",
        ".ps1", ".psm1", ".vbs", ".vbe", ".js", ".jse", ".wsf", ".wsh", ".hta", ".jar", ".lnk",
        ".sh", ".app", ".apk", ".reg",
    }
)  # fmt: skip
REFUSED_TYPES = frozenset(
    {
        "application/x-msdownload",
        "application/x-msdos-program",
        "application/x-dosexec",
        "application/vnd.microsoft.portable-executable",
        "application/x-executable",
        "application/x-sh",
        "application/x-bat",
        "application/x-msi",
        "application/java-archive",
        "application/javascript",
        "text/javascript",
        "application/hta",
    }
)
# Executable file signatures, refused whatever the name and declared type say (PE, ELF, Mach-O).
_EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")
# Types a browser displays without running anything; everything else downloads.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"})
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True, slots=True)
class AttachmentStore:
    root: Path
    max_bytes: int

    def save(self, filename: str, content_type: str, data: bytes, *, inline: bool = False) -> Attachment:
        """Write the bytes (once per content) and return an unsaved Attachment row for them."""
        if len(data) > self.max_bytes:
            raise AttachmentTooLargeError(
                f"{filename} is {len(data)} bytes; the limit is {self.max_bytes} bytes"
            )
        digest = hashlib.sha256(data).hexdigest()
        relative = Path(digest[:2]) / digest
        target = self.root / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_suffix(".partial")
            temporary.write_bytes(data)
            temporary.replace(target)
        safe_name = _UNSAFE.sub("_", Path(filename).name)[:255] or "attachment"
        return Attachment(
            filename=safe_name,
            content_type=(content_type or "application/octet-stream")[:255],
            size_bytes=len(data),
            sha256=digest,
            storage_path=str(relative),
            is_inline=inline,
            created_at=clock.now(),
        )

    def path_of(self, attachment: Attachment) -> Path:
        return self.root / attachment.storage_path


@dataclass(frozen=True, slots=True)
class Upload:
    """A file as it arrived (multipart part, form post)."""

    filename: str
    content_type: str
    data: bytes


def clean_content_type(raw: str) -> str:
    """The media type without parameters, lower case; unknown or malformed → octet-stream."""
    media_type = (raw or "").split(";", 1)[0].strip().lower()
    return media_type if _CONTENT_TYPE.match(media_type) else "application/octet-stream"


def check_uploads(uploads: Sequence[Upload], max_bytes: int) -> None:
    """Refuse too many files, a file over the limit (413) or a program or script (415)."""
    if len(uploads) > MAX_FILES:
        raise ValidationFailedError(
            "too many attachments",
            fields=[FieldProblem(("attachments",), f"attach at most {MAX_FILES} files to one message")],
        )
    for index, upload in enumerate(uploads):
        location: tuple[str | int, ...] = ("attachments", index)
        if len(upload.data) > max_bytes:
            raise AttachmentTooLargeError(
                f"{upload.filename} is larger than the limit of {max_bytes} bytes",
                fields=[FieldProblem(location, f"at most {max_bytes} bytes", "too_large")],
            )
        extension = Path(upload.filename).suffix.lower()
        media_type = clean_content_type(upload.content_type)
        if (
            extension in REFUSED_EXTENSIONS
            or media_type in REFUSED_TYPES
            or upload.data.startswith(_EXECUTABLE_MAGIC)
        ):
            raise AttachmentTypeRefusedError(
                f"{upload.filename}: programs and scripts cannot be attached",
                fields=[FieldProblem(location, "programs and scripts are refused", "type_refused")],
            )


def store_uploads(store: AttachmentStore, uploads: Sequence[Upload]) -> list[Attachment]:
    """Check every upload, then store each; unsaved Attachment rows for a message."""
    check_uploads(uploads, store.max_bytes)
    return [
        store.save(upload.filename, clean_content_type(upload.content_type), upload.data)
        for upload in uploads
    ]


def access_attachment(session: Session, actor: Actor, attachment_id: int) -> tuple[Attachment, Ticket]:
    """The attachment and its ticket if the actor may see that ticket; not-found otherwise."""
    require(actor, Permission.TICKET_READ)
    attachment = session.get(Attachment, attachment_id)
    message = session.get(Message, attachment.message_id) if attachment and attachment.message_id else None
    if attachment is None or message is None:
        raise AttachmentNotFoundError(f"attachment {attachment_id} not found")
    try:
        ticket = access_ticket(session, actor, message.ticket_id)
    except TicketNotFoundError as error:
        raise AttachmentNotFoundError(f"attachment {attachment_id} not found") from error
    return attachment, ticket


def content_disposition(attachment: Attachment) -> str:
    """``inline`` only for types browsers show safely; the name in ASCII and in RFC 5987 form."""
    kind = "inline" if attachment.content_type in INLINE_TYPES else "attachment"
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]+", "_", attachment.filename).strip() or "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(attachment.filename, safe='')}"
