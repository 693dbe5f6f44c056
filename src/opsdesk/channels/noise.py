"""Recognising mail that must never trigger an automatic reply: auto-replies, bounces, bulk mail.

Pure. The rules follow RFC 3834 (``Auto-Submitted``), RFC 3464 (delivery status notifications),
and the headers common mail software sets in practice (``Precedence``, ``X-Autoreply``,
``X-Auto-Response-Suppress``, list headers, mailer-daemon senders). Answering any of these is how
mail loops start, so when in doubt a message counts as noise.
"""

from __future__ import annotations

import re

from opsdesk.channels.email_parsing import ParsedEmail
from opsdesk.channels.enums import NoiseKind

_DAEMON_SENDER = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)
_NO_REPLY_SENDER = re.compile(r"^(no-?reply|do-?not-?reply|bounces?)[+@-]", re.IGNORECASE)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?reply|out of (the )?office|abwesenheitsnotiz|r[ée]ponse automatique"
    r"|automatische antwort|vacation|away from (the )?office)\b",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(undeliver(able|ed)|delivery status notification|mail delivery (failed|failure)"
    r"|returned mail|failure notice|delivery (has )?failed)",
    re.IGNORECASE,
)


def classify_noise(parsed: ParsedEmail) -> NoiseKind:
    """What kind of automated mail this is, or ``NoiseKind.NONE`` for mail a person wrote."""
    headers = parsed.headers
    if parsed.report_type == "delivery-status" or "x-failed-recipients" in headers:
        return NoiseKind.BOUNCE
    if _DAEMON_SENDER.match(parsed.from_address) or headers.get("return-path", "").strip() == "<>":
        return NoiseKind.BOUNCE
    if parsed.from_address == "" and _BOUNCE_SUBJECT.match(parsed.subject):
        return NoiseKind.BOUNCE
    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return NoiseKind.AUTO_REPLY
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return NoiseKind.AUTO_REPLY
    if _AUTO_REPLY_SUBJECT.match(parsed.subject):
        return NoiseKind.AUTO_REPLY
    if _BOUNCE_SUBJECT.match(parsed.subject) and _NO_REPLY_SENDER.match(parsed.from_address):
        return NoiseKind.BOUNCE
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return NoiseKind.AUTO_REPLY if precedence == "auto_reply" else NoiseKind.BULK
    if "list-id" in headers or "list-unsubscribe" in headers or _NO_REPLY_SENDER.match(parsed.from_address):
        return NoiseKind.BULK
    suppress = headers.get("x-auto-response-suppress", "").lower()
    if any(word in suppress for word in ("all", "oof", "autoreply")):
        return NoiseKind.SUPPRESS_REQUESTED
    return NoiseKind.NONE


def is_automated(kind: NoiseKind) -> bool:
    """Mail no person wrote: it never opens a ticket, only notes the one it threads to."""
    return kind in (NoiseKind.AUTO_REPLY, NoiseKind.BOUNCE)
