"""The clues that tie an email to an existing ticket, read from the message alone.

Pure. Three kinds of clue, strongest first:
1. Message-IDs the mail answers: ``In-Reply-To``, then ``References`` newest first (and, for a
   bounce, the ids of the message it returns);
2. the ticket's own reply-to address, ``support+<reply token>@…``, among the recipients;
3. a ``[#123]`` tag in the subject.
The service (:mod:`opsdesk.channels.service.inbound`) resolves the clues against the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opsdesk.channels.email_parsing import ParsedEmail

_SUBJECT_TAG = re.compile(r"\[#(\d{1,12})\]")
_PLUS_TOKEN = re.compile(r"^[^@+]+\+([A-Za-z0-9]{8,32})@")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|vs|antw|fw|fwd|wg|tr|rv)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ThreadClues:
    message_ids: tuple[str, ...]
    reply_tokens: tuple[str, ...]
    subject_ticket_ids: tuple[int, ...]


def thread_clues(parsed: ParsedEmail) -> ThreadClues:
    ids: list[str] = []
    # The ids inside a delivery report name the message that bounced; a forwarded message's id
    # is someone else's conversation and must not thread.
    returned = parsed.embedded_message_ids if parsed.report_type is not None else ()
    for candidate in (*parsed.in_reply_to, *reversed(parsed.references), *returned):
        if candidate not in ids and candidate != parsed.message_id:
            ids.append(candidate)
    tokens: list[str] = []
    for address in parsed.recipients:
        match = _PLUS_TOKEN.match(address)
        if match is not None and match.group(1).lower() not in tokens:
            tokens.append(match.group(1).lower())
    subject_ids = tuple(dict.fromkeys(int(value) for value in _SUBJECT_TAG.findall(parsed.subject)))
    return ThreadClues(tuple(ids), tuple(tokens), subject_ids)


def clean_subject(subject: str) -> str:
    """The subject without reply/forward prefixes and ticket tags, for a new ticket's title."""
    without_tag = _SUBJECT_TAG.sub("", subject)
    return " ".join(_REPLY_PREFIX.sub("", without_tag).split())


def reply_address(support_address: str, reply_token: str) -> str:
    """``support+<token>@example.com`` for a ticket: replies to it thread even without headers."""
    local, _, domain = support_address.partition("@")
    return f"{local}+{reply_token}@{domain}"


def tagged_subject(ticket_id: int, subject: str) -> str:
    """``Re: [#12] Subject``: the tag after any reply prefix, where clients keep it."""
    if f"[#{ticket_id}]" in subject:
        return subject
    prefix = _REPLY_PREFIX.match(subject)
    cut = prefix.end() if prefix is not None else 0
    return f"{subject[:cut]}[#{ticket_id}] {subject[cut:]}"
