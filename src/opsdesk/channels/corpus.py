"""Replaying a corpus of real-world emails and checking where each one landed.

A corpus is a folder of ``.eml`` files and a ``manifest.json`` listing them in order with what
must happen to each (``new`` ticket, ``reply`` or ``note`` on a labelled thread, ``ignored``,
``duplicate``) and what the stored message must (not) contain. Files may hold placeholders that
only exist once earlier mail was processed: ``{{id:A}}`` (thread A's ticket id), ``{{token:A}}``
(its reply token) and ``{{outbound:A}}`` (the Message-ID of the first email opsdesk sent on it).
Used by the corpus test and by ``opsdesk bench email``; a threading error is any message that
landed on another ticket than the manifest says.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from opsdesk.channels import inbound_pipeline
from opsdesk.channels.models import OutboundEmail, RawInbound
from opsdesk.config import Settings
from opsdesk.db import Database
from opsdesk.tickets.models import Message, Ticket

_PLACEHOLDER = re.compile(r"\{\{(id|token|outbound):([A-Za-z0-9]+)\}\}")


@dataclass(slots=True)
class CorpusReport:
    messages: int = 0
    threading_errors: int = 0
    problems: list[str] = field(default_factory=list)


def default_corpus_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "tests" / "channels" / "corpus"


def _substitute(raw: bytes, database: Database, threads: dict[str, int]) -> bytes:
    def replace(match: re.Match[bytes]) -> bytes:
        kind, label = match.group(1).decode(), match.group(2).decode()
        ticket_id = threads[label]
        if kind == "id":
            return str(ticket_id).encode()
        with database.transaction(write=False) as session:
            if kind == "token":
                return session.get_one(Ticket, ticket_id).reply_token.encode()
            rfc_id = session.scalars(
                select(OutboundEmail.rfc_message_id)
                .where(OutboundEmail.ticket_id == ticket_id)
                .order_by(OutboundEmail.id)
            ).first()
        return (rfc_id or "missing-outbound").encode()

    return re.sub(_PLACEHOLDER.pattern.encode(), replace, raw)


def replay_corpus(database: Database, settings: Settings, corpus_dir: Path | None = None) -> CorpusReport:
    folder = corpus_dir or default_corpus_dir()
    manifest: list[dict[str, Any]] = json.loads((folder / "manifest.json").read_text("utf-8"))
    threads: dict[str, int] = {}
    report = CorpusReport()
    for entry in manifest:
        report.messages += 1
        raw = _substitute((folder / entry["file"]).read_bytes(), database, threads)
        result = inbound_pipeline.ingest_email(database, raw, source="corpus", settings=settings)
        _check(database, entry, result, threads, report)
    return report


def _check(
    database: Database,
    entry: dict[str, Any],
    result: inbound_pipeline.IngestResult,
    threads: dict[str, int],
    report: CorpusReport,
) -> None:
    name, expect, label = entry["file"], entry["expect"], entry["thread"]

    def problem(text: str, *, threading: bool = False) -> None:
        report.problems.append(f"{name}: {text}")
        if threading:
            report.threading_errors += 1

    with database.transaction(write=False) as session:
        row = session.get_one(RawInbound, result.raw_inbound_id)
        if expect == "duplicate":
            if not result.duplicate or row.ticket_id != threads.get(label):
                problem("a repeated Message-ID was not recognised", threading=True)
            return
        if expect == "ignored":
            if row.status != "ignored" or row.ticket_id is not None:
                problem(f"expected ignored, got {row.status} on ticket {row.ticket_id}", threading=True)
            return
        if row.status != "processed" or row.ticket_id is None or row.message_id is None:
            problem(f"not processed: {row.status} {row.error}", threading=True)
            return
        ticket = session.get_one(Ticket, row.ticket_id)
        message = session.get_one(Message, row.message_id)
        if expect == "new":
            if ticket.id in threads.values() or label in threads:
                problem(f"threaded onto ticket {ticket.id} instead of opening a new one", threading=True)
            threads[label] = ticket.id
            if ticket.channel != "email":
                problem(f"channel is {ticket.channel}")
            if "subject" in entry and ticket.subject != entry["subject"]:
                problem(f"subject {ticket.subject!r} != {entry['subject']!r}")
            if "from_name" in entry and ticket.requester.name != entry["from_name"]:
                problem(f"requester name {ticket.requester.name!r} != {entry['from_name']!r}")
        elif ticket.id != threads.get(label):
            problem(f"landed on ticket {ticket.id}, expected {threads.get(label)}", threading=True)
        if expect == "note" and (message.is_public or message.author_kind != "system"):
            problem("automated mail should be an internal note")
        if expect == "reply" and (not message.is_public or message.author_kind != "customer"):
            problem("a customer reply should be a public customer message")
        if "receipt" in entry:
            receipts = session.scalar(
                select(func.count()).where(
                    OutboundEmail.ticket_id == ticket.id, OutboundEmail.kind == "receipt"
                )
            )
            if bool(receipts) != bool(entry["receipt"]) and expect == "new":
                problem(f"receipt sent: {bool(receipts)}, expected {entry['receipt']}")
        for text in entry.get("text_contains", []):
            if text not in message.body_text:
                problem(f"text lacks {text!r}: {message.body_text[:200]!r}")
        for text in entry.get("text_excludes", []):
            if text in message.body_text:
                problem(f"text still has {text!r}")
        for text in entry.get("html_excludes", []):
            if message.body_html is not None and text in message.body_html:
                problem(f"HTML still has {text!r}")
        if "attachments" in entry and len(message.attachments) != entry["attachments"]:
            problem(f"{len(message.attachments)} attachments, expected {entry['attachments']}")
        if "inline_attachments" in entry:
            inline = sum(1 for item in message.attachments if item.is_inline)
            if inline != entry["inline_attachments"]:
                problem(f"{inline} inline attachments, expected {entry['inline_attachments']}")
