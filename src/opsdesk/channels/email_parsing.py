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
from email import errors
from email.header import decode_header, make_header
from email.message import Message as MimeMessage
from email.parser import Parser
from email.utils import getaddresses, parsedate_to_datetime
from itertools import pairwise

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
    if "=?" not in raw:  # no encoded word: decoding would give the value back as it is
        return " ".join(raw.split())
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


# The forms nearly every From/To header takes: ``local@domain`` and ``Plain Name <local@domain>``
# (plain words, dots, hyphens, apostrophes; no quotes, comments, groups or lists). For them
# ``getaddresses`` gives the name and address as written; tests check the two agree.
_DOT_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_PLAIN_ADDRESS = re.compile(rf"{_DOT_ATOM}@{_DOT_ATOM}")
_PLAIN_NAME_ADDRESS = re.compile(rf"([A-Za-z0-9'-]+(?:[ .]+[A-Za-z0-9'-]+)*\.?) ?<({_DOT_ATOM}@{_DOT_ATOM})>")


def _plain_address(value: str) -> tuple[str, str] | None:
    if _PLAIN_ADDRESS.fullmatch(value):
        return "", value
    found = _PLAIN_NAME_ADDRESS.fullmatch(value)
    return (found.group(1), found.group(2)) if found is not None else None


def addresses_in(values: list[str]) -> list[tuple[str, str]]:
    decoded = [decode_header_value(value) for value in values]
    plain = _plain_address(decoded[0]) if len(decoded) == 1 else None
    result: list[tuple[str, str]] = []
    for name, address in [plain] if plain is not None else getaddresses(decoded):
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


_PARSER = Parser(policy=email.policy.compat32)
# A line break followed by an empty line; atomic groups keep "\r\n" one line break, never two.
_EMPTY_LINE = re.compile(r"(?>(\r\n|\r|\n))(?>\r\n|\r|\n)")
_MAX_MULTIPART_DEPTH = 20


def parse_mime(raw: bytes) -> MimeMessage:
    """The MIME tree of a raw message, as ``email.message_from_bytes(raw, policy=compat32)``
    builds it, but faster on well-formed multipart mail.

    The stdlib's feed parser compiles a regular expression for each multipart boundary it meets
    (each message has its own, so its cache does not help) and reads every line in Python. Here
    a well-formed multipart body (its delimiter lines found, one closing delimiter, last) is cut
    at its delimiter lines with ``str.find`` and each part parsed on its own. Anything else (a
    head the feed parser would end early, no boundary, no closing delimiter, ``multipart/digest``,
    an embedded ``message/*`` part) anywhere in the tree sends the whole message to the feed
    parser, so odd mail gets exactly the stdlib's lenient parse."""
    text = raw.decode("ascii", "surrogateescape")  # what the stdlib's BytesParser does
    try:
        return _parse_text(text, 0)
    except _LeftToTheStdlib:
        return _PARSER.parsestr(text)


def parse_mime_stdlib(raw: bytes) -> MimeMessage:
    """The stdlib's own parse, which :func:`parse_mime` must match (tests compare the two)."""
    return email.message_from_bytes(raw, policy=email.policy.compat32)


class _LeftToTheStdlib(Exception):
    """Raised where the fast split would not be sure to build the stdlib's tree."""


def _parse_text(text: str, depth: int) -> MimeMessage:
    split = _head_and_body(text)
    if split is None:
        raise _LeftToTheStdlib
    head, body = split
    message = _PARSER.parsestr(head, headersonly=True)
    if message.get_payload() or any(
        isinstance(defect, errors.MissingHeaderBodySeparatorDefect) for defect in message.defects
    ):
        raise _LeftToTheStdlib  # a line that is no header ended the head early
    main_type = message.get_content_maintype()
    if main_type == "message":  # an embedded message or a delivery report
        if depth > 0:
            raise _LeftToTheStdlib  # inside a multipart the feed parser keeps its last line break
        return _PARSER.parsestr(text)
    if main_type == "multipart":
        message.set_payload(_split_multipart(message, body, depth))
        return message
    message.set_payload(body)  # a leaf: its body is the rest of the text, as the feed parser keeps it
    return message


def _head_and_body(text: str) -> tuple[str, str] | None:
    """The header lines (each with its line break) and the body after the empty line."""
    for line_break in ("\r\n", "\n", "\r"):
        if text.startswith(line_break):
            return "", text[len(line_break) :]
    found = _EMPTY_LINE.search(text)
    if found is None:
        return None
    return text[: found.start() + len(found.group(1))], text[found.end() :]


def _split_multipart(message: MimeMessage, body: str, depth: int) -> list[MimeMessage | str]:
    boundary = message.get_boundary()
    if (
        not boundary
        or message.get_content_subtype() == "digest"  # its parts default to message/rfc822
        or depth >= _MAX_MULTIPART_DEPTH
    ):
        raise _LeftToTheStdlib
    delimiters = _delimiter_lines(body, "--" + boundary)
    if len(delimiters) < 2 or not delimiters[-1][2] or any(closing for _, _, closing in delimiters[:-1]):
        raise _LeftToTheStdlib
    return [
        _parse_text(_without_last_line_break(body[end:next_start]), depth + 1)
        for (_, end, _), (next_start, _, _) in pairwise(delimiters)
    ]


def _delimiter_lines(body: str, delimiter: str) -> list[tuple[int, int, bool]]:
    """(start, end after its line break, closing?) of each line that is ``--boundary`` or
    ``--boundary--``, optionally followed by spaces or tabs (what the feed parser accepts)."""
    found: list[tuple[int, int, bool]] = []
    length = len(body)
    index = body.find(delimiter)
    while index != -1:
        if index == 0 or body[index - 1] in "\r\n":
            after = index + len(delimiter)
            closing = body.startswith("--", after)
            position = after + 2 if closing else after
            while position < length and body[position] in " \t":
                position += 1
            if position == length or body[position] in "\r\n":
                if body.startswith("\r\n", position):
                    end = position + 2
                else:
                    end = position + 1 if position < length else position
                found.append((index, end, closing))
        index = body.find(delimiter, index + 1)
    return found


def _without_last_line_break(text: str) -> str:
    """A part's text without the line break that belongs to the delimiter line after it."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\n", "\r")):
        return text[:-1]
    return text


def parse_email(raw: bytes) -> ParsedEmail:
    """Everything the helpdesk reads from one raw message. Never raises on malformed input."""
    return parsed_from_mime(parse_mime(raw), raw)


def parsed_from_mime(message: MimeMessage, raw: bytes) -> ParsedEmail:
    """What :func:`parse_email` reads from a parsed MIME tree (``raw``: the bytes it came from)."""
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
