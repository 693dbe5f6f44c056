"""Building an outgoing email: multipart text + HTML with the headers that make clients thread it.

Pure. Invariants: every message carries its own ``Message-ID`` (stored before sending, so a
customer's reply threads back), ``In-Reply-To``/``References`` when it answers something, a
``Reply-To`` with the ticket's own address, and ``Auto-Submitted: auto-replied`` on automatic
mail (receipts, refusals) so other systems do not answer it (RFC 3834). Attachments, when given,
wrap the text/HTML alternative in ``multipart/mixed``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from opsdesk import clock


@dataclass(frozen=True, slots=True)
class EmailAttachment:
    filename: str
    content_type: str  # e.g. "application/pdf"
    data: bytes


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    message_id: str  # without angle brackets
    from_name: str
    from_address: str
    to_address: str
    subject: str
    text: str
    html: str
    reply_to: str | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    automatic: bool = False
    attachments: Sequence[EmailAttachment] = ()


def new_message_id(domain: str, label: str) -> str:
    return f"opsdesk.{label}.{uuid.uuid4().hex}@{domain}"


def _address(name: str, address: str) -> Address:
    local, _, domain = address.partition("@")
    return Address(display_name=name, username=local, domain=domain)


def compose(outgoing: OutgoingEmail) -> EmailMessage:
    message = EmailMessage()
    message["Message-ID"] = f"<{outgoing.message_id}>"
    message["Date"] = format_datetime(clock.now())
    message["From"] = _address(outgoing.from_name, outgoing.from_address)
    message["To"] = outgoing.to_address
    message["Subject"] = outgoing.subject
    if outgoing.reply_to:
        message["Reply-To"] = _address(outgoing.from_name, outgoing.reply_to)
    if outgoing.in_reply_to:
        message["In-Reply-To"] = f"<{outgoing.in_reply_to}>"
    if outgoing.references:
        message["References"] = " ".join(f"<{item}>" for item in outgoing.references)
    if outgoing.automatic:
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
    message.set_content(outgoing.text)
    message.add_alternative(outgoing.html, subtype="html")
    for attachment in outgoing.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return message
