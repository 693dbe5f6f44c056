"""Stripping quoted history and signatures from a reply, for the text shown on the ticket.

Pure. Invariants: only what follows the customer's own words is removed (the reply header of
Gmail, Apple Mail, Outlook and Thunderbird in several languages, ``>`` quote blocks at the end,
the ``-- `` signature delimiter and "Sent from my phone" lines); a forwarded message is content,
not history, and is kept; when stripping would leave nothing, the text is kept whole. The full
original always stays in the stored raw message.
"""

from __future__ import annotations

import re

# "On Tue, 3 Mar 2026 at 10:02, Jane <jane@example.com> wrote:" (Gmail, Apple Mail, Thunderbird),
# possibly wrapped over two lines, and its French, German, Spanish, Dutch and Portuguese forms.
_ANY = r"[^\n]{1,300}?(?:\n[^\n]{1,200}?)?"  # the header may wrap onto a second line
_REPLY_HEADER = re.compile(
    rf"^[ \t]*(On\s{_ANY}\swrote|Le\s{_ANY}\sa\s[ée]crit|Am\s{_ANY}\sschrieb[^\n]{{0,200}}?"
    rf"|El\s{_ANY}\sescribi[óo]|Op\s{_ANY}\sschreef[^\n]{{0,200}}?|Em\s{_ANY}\sescreveu)[ \t]?:[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(Original Message|Urspr[üu]ngliche Nachricht|Message d'origine|Mensaje original)\s*-{2,}",
    re.IGNORECASE | re.MULTILINE,
)
# Outlook's plain header block: "From: …" followed within two lines by "Sent:" or "Date:".
_OUTLOOK_HEADER = re.compile(
    r"^[ \t]*(?:_{10,}\s*\n)?[ \t]*\*?(From|Von|De)\s?:\*?[^\n]*\n"
    r"(?:[^\n]*\n){0,2}?[ \t]*\*?(Sent|Date|Gesendet|Envoy[ée])\s?:",
    re.IGNORECASE | re.MULTILINE,
)
_FORWARD_MARKER = re.compile(
    r"^\s*(-{5,}\s*Forwarded message\s*-{5,}|Begin forwarded message:|-{5,}\s*Weitergeleitete Nachricht)",
    re.IGNORECASE | re.MULTILINE,
)
_SIGNATURE_DELIMITER = re.compile(r"^-- ?$", re.MULTILINE)
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(Sent from my \w+.*|Sent from Mail for Windows.*|Get Outlook for (iOS|Android).*"
    r"|Envoy[ée] de mon \w+.*|Von meinem \w+ gesendet.*)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_HTML_QUOTE_STARTS = (
    re.compile(r'<div[^>]*class="?gmail_quote', re.IGNORECASE),
    re.compile(r'<blockquote[^>]*type="?cite', re.IGNORECASE),
    re.compile(
        r'<div[^>]*id="?(appendonsend|divRplyFwdMsg|mail-editor-reference-message-container)', re.IGNORECASE
    ),
    re.compile(r'<div[^>]*class="?(moz-cite-prefix|yahoo_quoted|OutlookMessageHeader)', re.IGNORECASE),
    re.compile(r"<hr[^>]*>\s*(<div[^>]*>\s*)?<font[^>]*>\s*<b>\s*From:", re.IGNORECASE),
    re.compile(r'<div[^>]*style="[^"]*border-top:\s*solid\s*#E1E1E1', re.IGNORECASE),
)
_HTML_SIGNATURE_STARTS = (re.compile(r'<div[^>]*class="?gmail_signature', re.IGNORECASE),)


def _cut_at(text: str, position: int | None) -> str:
    return text if position is None else text[:position]


def _earliest(text: str, patterns: tuple[re.Pattern[str], ...]) -> int | None:
    positions = [match.start() for pattern in patterns if (match := pattern.search(text)) is not None]
    return min(positions) if positions else None


def _trailing_quote_start(lines: list[str]) -> int | None:
    """The first line of a ``>`` block that runs (blank lines allowed) to the end."""
    start: int | None = None
    for index in range(len(lines) - 1, -1, -1):
        stripped = lines[index].strip()
        if stripped.startswith(">"):
            start = index
        elif stripped and start is not None:
            break
        elif stripped:
            return None
    return start


def strip_reply_text(text: str) -> str:
    """The new part of a plain-text reply: no quoted history, no signature."""
    original = text.replace("\r\n", "\n")
    forward = _FORWARD_MARKER.search(original)
    head = original if forward is None else original[: forward.start()]
    cut = _earliest(head, (_REPLY_HEADER, _ORIGINAL_MESSAGE, _OUTLOOK_HEADER))
    result = _cut_at(head, cut)
    lines = result.split("\n")
    quote_start = _trailing_quote_start(lines)
    if quote_start is not None:
        lines = lines[:quote_start]
    result = "\n".join(lines)
    signature = _SIGNATURE_DELIMITER.search(result)
    if signature is not None:
        result = result[: signature.start()]
    result = _MOBILE_SIGNATURE.sub("", result)
    if forward is not None:
        result = result.rstrip() + "\n\n" + original[forward.start() :].strip()
    result = result.strip()
    return result if result else original.strip()


def strip_reply_html(html: str) -> str:
    """The new part of an HTML reply; the caller sanitizes (which also closes cut-off tags)."""
    cut = _earliest(html, _HTML_QUOTE_STARTS + _HTML_SIGNATURE_STARTS)
    if cut is None:
        return html
    result = html[:cut]
    visible = re.sub(r"<[^>]+>|&nbsp;|\s", "", result)
    return result if visible else html
