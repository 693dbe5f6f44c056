"""Parsing a raw RFC 5322 message into what the helpdesk needs, whatever the sender's software did.

Pure: bytes in, a :class:`ParsedEmail` out, no I/O. Invariants:
- parsing never raises on bad input: unknown charsets, broken transfer encodings and malformed
  headers degrade to a best-effort decoding (``defects`` lists what was repaired);
- every message gets a Message-ID: a missing one is derived from the SHA-256 of the raw bytes, so
  the same bytes always get the same id and dedupe still works;
- an HTML-only message gets a text version; forwarded messages (``message/rfc822``) and calendar
  invites are kept as attachments and summarised in the text.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.header import decode_header, make_header
from email.message import Message as MimeMessage
from email.utils import getaddresses, parsedate_to_datetime

from opsdesk.tickets.html import html_to_text

# Charset names mail software writes that Python's codecs do not know by that name.
_CHARSET_ALIASES = {
    "x-sjis": "shift_jis",
    "sjis": "shift_jis",
    "x-euc-jp": "euc_jp",
    "ks_c_5601-1987": "cp949",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "unicode-1-1-utf-7": "utf-7",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
    "us-ascii": "ascii",
    "iso-8859-8-i": "iso-8859-8",
    "gb2312": "gb18030",  # a superset: mail labelled gb2312 often uses gbk characters
    "gbk": "gb18030",
}
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_BARE_ID = re.compile(r"[^<>\s,;]+@[^<>\s,;]+")
_CALENDAR_FIELD = re.compile(r"^(SUMMARY|DTSTART[^:]*|LOCATION|METHOD):(.*)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    message_id: str  # without angle brackets
    has_own_message_id: bool
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    from_address: str  # lower case; "" when no usable sender could be found
    from_name: str | None
    recipients: tuple[str, ...]  # To, Cc, Delivered-To, X-Original-To (lower case)
    subject: str
    date: datetime | None
    text: str
    html: str | None
    attachments: tuple[ParsedAttachment, ...]
    headers: dict[str, str]  # lower-case name -> decoded value, for the headers noise rules read
    content_type: str
    report_type: str | None  # "delivery-status" for DSNs
    embedded_message_ids: tuple[str, ...] = ()  # ids of messages a bounce or forward carries
    defects: tuple[str, ...] = field(default=())


_NOISE_HEADERS = (
    "auto-submitted",
    "precedence",
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
    "list-id",
    "list-unsubscribe",
    "x-failed-recipients",
    "return-path",
    "thread-index",
    "x-mailer",
    "sender",
    "reply-to",
)


def decode_text(payload: bytes, charset: str | None) -> tuple[str, bool]:
    """Bytes in the declared charset; falls back to UTF-8, then Windows-1252. True if repaired."""
    name = (charset or "utf-8").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return payload.decode(name), False
    except (LookupError, UnicodeDecodeError):
        pass
    for fallback in ("utf-8", "cp1252"):
        try:
            return payload.decode(fallback), True
        except UnicodeDecodeError:
            continue
    return payload.decode("latin-1"), True


def decode_header_value(raw: str | None) -> str:
    """An RFC 2047 header as text; undecodable words are kept as they came."""
    if not raw:
        return ""
    try:
        text = str(make_header(decode_header(raw)))
    except (LookupError, UnicodeDecodeError, ValueError, email.errors.HeaderParseError):
        parts: list[str] = []
        try:
            for value, charset in decode_header(raw):
                if isinstance(value, bytes):
                    parts.append(decode_text(value, charset)[0])
                else:
                    parts.append(value)
            text = "".join(parts)
        except (ValueError, email.errors.HeaderParseError):
            text = raw
    return " ".join(text.split())


def message_ids_in(value: str) -> tuple[str, ...]:
    """The ids of a Message-ID, In-Reply-To or References header, in order, without brackets."""
    found = _MESSAGE_ID.findall(value)
    if not found:
        found = _BARE_ID.findall(value)
    seen: list[str] = []
    for item in found:
        cleaned = item.strip()
        if cleaned and cleaned not in seen:
            seen.append(cleaned)
    return tuple(seen)


def _raw_headers(message: MimeMessage) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name, value in message.raw_items():  # type: ignore[attr-defined]
        headers.setdefault(name.lower(), []).append(str(value))
    return headers


def _first(headers: dict[str, list[str]], name: str) -> str:
    values = headers.get(name)
    return decode_header_value(values[0]) if values else ""


def addresses_in(values: list[str]) -> list[tuple[str, str]]:
    decoded = [decode_header_value(value) for value in values]
    result: list[tuple[str, str]] = []
    for name, address in getaddresses(decoded):
        address = address.strip().strip("<>").lower()
        if "@" in address and " " not in address:
            result.append((name.strip().strip('"'), address))
    return result


def _payload_bytes(part: MimeMessage, defects: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError) as error:  # pragma: no cover - the stdlib is lenient
        defects.append(f"undecodable payload: {error}")
        return b""
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "replace") if isinstance(raw, str) else b""


def _filename(part: MimeMessage) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, LookupError, email.errors.HeaderParseError):
        name = None
    if name is None:
        return None
    return decode_header_value(name) or None


def _calendar_summary(text: str) -> str:
    fields = {key.split(";", 1)[0]: value.strip() for key, value in _CALENDAR_FIELD.findall(text)}
    lines = ["Calendar invitation"]
    if "SUMMARY" in fields:
        lines.append(f"Event: {fields['SUMMARY']}")
    if "DTSTART" in fields:
        lines.append(f"Starts: {fields['DTSTART']}")
    if "LOCATION" in fields:
        lines.append(f"Location: {fields['LOCATION']}")
    return "\n".join(lines)


class _Walker:
    """Collects the text, HTML and attachments of a MIME tree in one pass."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[ParsedAttachment] = []
        self.notes: list[str] = []
        self.embedded_ids: list[str] = []
        self.defects: list[str] = []
        self.report_type: str | None = None

    def walk(self, part: MimeMessage) -> None:
        content_type = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        if content_type in ("message/rfc822", "message/rfc822-headers", "text/rfc822-headers"):
            self._embedded(part, content_type)
            return
        if content_type == "message/delivery-status":
            self.notes.append(_delivery_status_text(part))
            return
        if part.is_multipart():
            subtype = part.get_content_subtype()
            if subtype == "report":
                self.report_type = (part.get_param("report-type") or "").__str__().lower() or None
            children = part.get_payload()
            if not isinstance(children, list):
                return
            for child in children:
                if isinstance(child, MimeMessage):
                    self.walk(child)
            return
        filename = _filename(part)
        is_attachment = disposition == "attachment" or (
            filename is not None and content_type not in ("text/plain", "text/html")
        )
        if content_type == "text/calendar":
            data = _payload_bytes(part, self.defects)
            text, _ = decode_text(data, part.get_content_charset())
            self.notes.append(_calendar_summary(text))
            self.attachments.append(ParsedAttachment(filename or "invite.ics", content_type, data))
            return
        if content_type in ("text/plain", "text/html") and not is_attachment:
            data = _payload_bytes(part, self.defects)
            text, repaired = decode_text(data, part.get_content_charset())
            if repaired:
                self.defects.append(f"{content_type} not in its declared charset")
            text = text.replace("\r\n", "\n")
            (self.texts if content_type == "text/plain" else self.htmls).append(text)
            return
        data = _payload_bytes(part, self.defects)
        content_id = part.get("Content-ID")
        inline = disposition == "inline" or (disposition == "" and content_id is not None)
        self.attachments.append(
            ParsedAttachment(
                filename=filename or _default_name(content_type),
                content_type=content_type,
                data=data,
                inline=inline,
                content_id=str(content_id).strip().strip("<>") if content_id else None,
            )
        )

    def _embedded(self, part: MimeMessage, content_type: str) -> None:
        payload = part.get_payload()
        inner: MimeMessage | None = None
        if isinstance(payload, list) and payload and isinstance(payload[0], MimeMessage):
            inner = payload[0]
        elif isinstance(payload, str):
            inner = email.message_from_string(payload, policy=email.policy.compat32)
        if inner is None:
            return
        headers = _raw_headers(inner)
        for value in headers.get("message-id", []):
            self.embedded_ids.extend(message_ids_in(value))
        if content_type == "message/rfc822":
            subject = _first(headers, "subject") or "(no subject)"
            sender = _first(headers, "from")
            self.notes.append(f"Forwarded message from {sender}: {subject}")
            self.attachments.append(
                ParsedAttachment(f"{_safe_stem(subject)}.eml", "message/rfc822", inner.as_bytes())
            )


def _delivery_status_text(part: MimeMessage) -> str:
    """The per-recipient fields of a DSN (RFC 3464), as ``Name: value`` lines."""
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else []
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, MimeMessage):
            lines.extend(f"{name}: {value}" for name, value in block.items())
    if not lines and isinstance(payload, str):
        lines = [line for line in payload.splitlines() if line.strip()]
    return "\n".join(lines)


def _default_name(content_type: str) -> str:
    main, _, sub = content_type.partition("/")
    return f"{main or 'attachment'}.{sub or 'bin'}"


def _safe_stem(text: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9 ._-]+", "", text).strip()[:60]
    return stem or "message"


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


def parse_email(raw: bytes) -> ParsedEmail:
    """Everything the helpdesk reads from one raw message. Never raises on malformed input."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    headers = _raw_headers(message)
    walker = _Walker()
    walker.walk(message)
    defects = [type(defect).__name__ for defect in message.defects] + walker.defects

    own_ids = message_ids_in(_first(headers, "message-id"))
    message_id = own_ids[0] if own_ids else f"sha256-{hashlib.sha256(raw).hexdigest()}@opsdesk.invalid"
    senders = addresses_in(headers.get("from", [])) or addresses_in(headers.get("reply-to", []))
    if not senders:
        senders = addresses_in(headers.get("sender", [])) or addresses_in(headers.get("return-path", []))
    from_name, from_address = senders[0] if senders else ("", "")
    recipients: list[str] = []
    for name in ("to", "cc", "delivered-to", "x-original-to", "envelope-to"):
        for _, address in addresses_in(headers.get(name, [])):
            if address not in recipients:
                recipients.append(address)

    html = "\n".join(walker.htmls) if walker.htmls else None
    text = "\n\n".join(part.strip("\n") for part in walker.texts)
    if not text.strip() and html:
        text = html_to_text(html)
    if walker.notes:
        text = "\n\n".join([text.rstrip(), *walker.notes]).strip()
    return ParsedEmail(
        message_id=message_id,
        has_own_message_id=bool(own_ids),
        in_reply_to=message_ids_in(_first(headers, "in-reply-to")),
        references=message_ids_in(" ".join(headers.get("references", []))),
        from_address=from_address,
        from_name=from_name or None,
        recipients=tuple(recipients),
        subject=_first(headers, "subject"),
        date=_date(_first(headers, "date")),
        text=text,
        html=html,
        attachments=tuple(walker.attachments),
        headers={name: _first(headers, name) for name in _NOISE_HEADERS if name in headers},
        content_type=message.get_content_type(),
        report_type=walker.report_type,
        embedded_message_ids=tuple(walker.embedded_ids),
        defects=tuple(defects),
    )
