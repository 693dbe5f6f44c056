"""Keyword search over tickets: every word must occur in the ticket's subject or messages.

The index is one document per ticket (subject + the text of every message), kept by the
database itself on every write: triggers made by the migrations maintain an SQLite FTS5 table
(porter stemming) or a PostgreSQL ``tsvector`` with a GIN index (``english`` configuration). So
every path that writes tickets or messages, including bulk loaders, keeps search current, and
nothing can forget to. Search never scans tickets: it asks the index for matching ids.
"""

from __future__ import annotations

import re

from sqlalchemy import Select, column, func, literal_column, select, table, text
from sqlalchemy.orm import Session

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 12

SQLITE_INDEX = table("ticket_search", column("rowid"))
POSTGRES_INDEX = table("ticket_search", column("ticket_id"), column("document"))


def words_of(query: str) -> list[str]:
    """The searchable words of a user's query (punctuation and operators are dropped)."""
    return [word.lower() for word in _WORD.findall(query)][:MAX_WORDS]


def fts5_query(words: list[str]) -> str:
    # Quoted terms: user text can never be read as FTS5 syntax (NEAR, OR, column filters...).
    return " ".join(f'"{word}"' for word in words)


def matching_ticket_ids(session: Session, query: str) -> Select[tuple[int]]:
    """A subquery of the ids of tickets that contain every word of ``query``."""
    words = words_of(query)
    if not words:
        return select(literal_column("NULL").label("id")).where(text("1 = 0"))
    if session.get_bind().dialect.name == "sqlite":
        return select(SQLITE_INDEX.c.rowid).where(
            literal_column("ticket_search").op("MATCH")(fts5_query(words))
        )
    tsquery = func.plainto_tsquery(literal_column("'english'::regconfig"), " ".join(words))
    return select(POSTGRES_INDEX.c.ticket_id).where(POSTGRES_INDEX.c.document.op("@@")(tsquery))
