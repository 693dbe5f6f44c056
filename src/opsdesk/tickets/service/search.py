"""Keyword search over tickets: every word must occur in the ticket's subject or messages.

The index is one document per ticket (subject + the text of every message), kept by the
database itself on every write: triggers made by the migrations maintain an SQLite FTS5 table
(porter stemming) or a PostgreSQL ``tsvector`` with a GIN index (``english`` configuration). So
every path that writes tickets or messages, including bulk loaders, keeps search current, and
nothing can forget to. Search never scans tickets: it asks the index for matching ids.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

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


def newest_matching_ids(session: Session, query: str, *, below: int | None, count: int) -> list[int]:
    """Up to ``count`` ids of matching tickets, highest first, below ``below`` if given, without
    reading every match.

    SQLite: FTS5 reads its lists backwards for ``ORDER BY rowid DESC``, so this stops early.
    PostgreSQL: the GIN index finds all matches at once, but each match's row must be read for
    its id, which for a word in 2% of a million tickets is 20,000 rows read and sorted for 50.
    So the newest ids are asked for in windows of ids that grow (20,000, then 80,000, ...): a
    common word is answered from the first window, a rare one after a few cheap index lookups.
    """
    words = words_of(query)
    if not words:
        return []
    if session.get_bind().dialect.name == "sqlite":
        sql = "SELECT rowid FROM ticket_search WHERE ticket_search MATCH :query"
        parameters: dict[str, object] = {"query": fts5_query(words), "count": count}
        if below is not None:
            sql += " AND rowid < :below"
            parameters["below"] = below
        sql += " ORDER BY rowid DESC LIMIT :count"
        return [int(row[0]) for row in session.execute(text(sql), parameters)]
    top = below
    if top is None:
        highest = session.execute(text("SELECT max(ticket_id) FROM ticket_search")).scalar()
        if highest is None:
            return []
        top = int(highest) + 1
    statement = text(
        "SELECT ticket_id FROM ticket_search WHERE document @@ plainto_tsquery('english', :words) "
        "AND ticket_id >= :low AND ticket_id < :top ORDER BY ticket_id DESC LIMIT :count"
    )
    found: list[int] = []
    window = POSTGRES_FIRST_WINDOW
    while len(found) < count and top > 0:
        low = max(top - window, 0)
        rows = session.execute(
            statement, {"words": " ".join(words), "low": low, "top": top, "count": count - len(found)}
        )
        found.extend(int(row[0]) for row in rows)
        top, window = low, window * 4
    return found


POSTGRES_FIRST_WINDOW = 20_000


# ---------------------------------------------------------------- bulk loads
# The triggers below are the ones migration api_02 creates (migrations stay frozen, so the DDL is
# repeated here; tests check both match). A bulk loader suspends them, writes, and has the index
# rebuilt once from the rows, which is several times faster than maintaining it row by row.

SQLITE_TRIGGERS: dict[str, str] = {
    "ticket_search_ticket_inserted": """CREATE TRIGGER ticket_search_ticket_inserted
        AFTER INSERT ON tickets BEGIN
        INSERT INTO ticket_search(rowid, subject, body) VALUES (new.id, new.subject, '');
    END""",
    "ticket_search_subject_changed": """CREATE TRIGGER ticket_search_subject_changed
        AFTER UPDATE OF subject ON tickets BEGIN
        UPDATE ticket_search SET subject = new.subject WHERE rowid = new.id;
    END""",
    "ticket_search_ticket_deleted": """CREATE TRIGGER ticket_search_ticket_deleted
        AFTER DELETE ON tickets BEGIN
        DELETE FROM ticket_search WHERE rowid = old.id;
    END""",
    "ticket_search_message_added": """CREATE TRIGGER ticket_search_message_added
        AFTER INSERT ON messages BEGIN
        UPDATE ticket_search SET body = body || char(10) || new.body_text
        WHERE rowid = new.ticket_id;
    END""",
    "ticket_search_message_moved": """CREATE TRIGGER ticket_search_message_moved
        AFTER UPDATE OF ticket_id ON messages BEGIN
        UPDATE ticket_search SET body = body || char(10) || new.body_text
        WHERE rowid = new.ticket_id;
    END""",
}
POSTGRES_TRIGGERS: dict[str, str] = {
    "ticket_search_ticket ON tickets": """CREATE TRIGGER ticket_search_ticket
        AFTER INSERT OR UPDATE OF subject ON tickets
        FOR EACH ROW EXECUTE FUNCTION ticket_search_ticket_changed()""",
    "ticket_search_message ON messages": """CREATE TRIGGER ticket_search_message
        AFTER INSERT OR UPDATE OF ticket_id ON messages
        FOR EACH ROW EXECUTE FUNCTION ticket_search_message_added()""",
}
# FTS5 gathers new terms in memory up to its hash size (1 MiB by default) before it writes a
# segment, and merges segments as they pile up. A bulk load gathers far more (fewer, larger
# segments) and leaves merging off until it ends: at a million tickets that halves its cost
# (a 64 MiB buffer with merging took 15 s, 256 MiB without 9 s).
SQLITE_BULK_HASH_SIZE = 256 * 1024 * 1024
SQLITE_DEFAULT_HASH_SIZE = 1024 * 1024
SQLITE_DEFAULT_AUTOMERGE = 4
SQLITE_BULK_SETTINGS = (
    f"INSERT INTO ticket_search(ticket_search, rank) VALUES ('hashsize', {SQLITE_BULK_HASH_SIZE})",
    "INSERT INTO ticket_search(ticket_search, rank) VALUES ('automerge', 0)",
)
SQLITE_DEFAULT_SETTINGS = (
    f"INSERT INTO ticket_search(ticket_search, rank) VALUES ('hashsize', {SQLITE_DEFAULT_HASH_SIZE})",
    f"INSERT INTO ticket_search(ticket_search, rank) VALUES ('automerge', {SQLITE_DEFAULT_AUTOMERGE})",
)
SQLITE_REBUILD = (
    "DELETE FROM ticket_search",
    *SQLITE_BULK_SETTINGS,
    """INSERT INTO ticket_search(rowid, subject, body)
        SELECT t.id, t.subject,
               coalesce((SELECT group_concat(m.body_text, char(10))
                         FROM messages m WHERE m.ticket_id = t.id), '')
        FROM tickets t""",
    *SQLITE_DEFAULT_SETTINGS,
)
# PostgreSQL: the document the triggers keep is the subject's vector followed by each message's
# vector in insertion order (``document || to_tsvector(body)`` per message). The rebuild makes
# the same vectors, the expensive part (parsing and stemming every message) as a parallel scan,
# which only CREATE TABLE AS may use, then concatenates them per ticket in message order.
POSTGRES_REBUILD = (
    "TRUNCATE ticket_search",
    "DROP INDEX IF EXISTS ix_ticket_search_document",
    "CREATE AGGREGATE pg_temp.opsdesk_tsvector_concat(tsvector) "
    "(SFUNC = pg_catalog.tsvector_concat, STYPE = tsvector, INITCOND = '')",
    # Planner costs that let the scan of messages use parallel workers whatever its estimate.
    "SET LOCAL parallel_setup_cost = 0",
    "SET LOCAL parallel_tuple_cost = 0",
    "SET LOCAL min_parallel_table_scan_size = 0",
    """CREATE TEMPORARY TABLE opsdesk_message_vectors ON COMMIT DROP AS
        SELECT ticket_id, id, to_tsvector('english', body_text) AS vector FROM messages""",
    "RESET parallel_setup_cost",
    "RESET parallel_tuple_cost",
    "RESET min_parallel_table_scan_size",
    """INSERT INTO ticket_search(ticket_id, document)
        SELECT t.id, setweight(to_tsvector('english', t.subject), 'A')
               || coalesce(m.document, ''::tsvector)
        FROM tickets t LEFT JOIN (
            SELECT ticket_id, pg_temp.opsdesk_tsvector_concat(vector ORDER BY id) AS document
            FROM opsdesk_message_vectors GROUP BY ticket_id
        ) m ON m.ticket_id = t.id""",
    "DROP TABLE opsdesk_message_vectors",
    "DROP AGGREGATE pg_temp.opsdesk_tsvector_concat(tsvector)",
    "CREATE INDEX ix_ticket_search_document ON ticket_search USING gin (document)",
)


# PostgreSQL: a ticket's document from its subject and its messages' texts one per line.
POSTGRES_DOCUMENT = (
    "setweight(to_tsvector('english', {subject}), 'A') "
    + "|| coalesce(to_tsvector('english', {body}), ''::tsvector)"
)


@contextlib.contextmanager
def suspended_index(session: Session, *, rebuild: bool = True) -> Iterator[None]:
    """Inside the caller's transaction: stop maintaining the index, let the block write tickets
    and messages in bulk, then rebuild the whole index and restore the triggers. If the block
    fails, the transaction's rollback restores everything.

    With ``rebuild=False`` the block writes the index rows of the tickets it loads itself and
    nothing is rebuilt. SQLite: ``INSERT INTO ticket_search(rowid, subject, body)``, the subject
    and the message texts one per line, as the rebuild makes them, with the rebuild's bulk
    settings (:data:`SQLITE_BULK_SETTINGS`, restored after). PostgreSQL:
    :data:`POSTGRES_DOCUMENT` of the subject and those texts, the document the triggers make when
    a subject changes (they append a vector per message as messages arrive: the same words).
    """
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    present = session.execute(
        text(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'ticket_search%'"
            if sqlite
            else "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'ticket_search%'"
        )
    ).scalar()
    if not present:
        # Already suspended by an enclosing bulk load: that one rebuilds and restores.
        yield
        return
    for name in SQLITE_TRIGGERS if sqlite else POSTGRES_TRIGGERS:
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    if not rebuild and sqlite:
        for statement in SQLITE_BULK_SETTINGS:
            connection.exec_driver_sql(statement)
    yield
    connection = session.connection()
    if rebuild:
        for statement in SQLITE_REBUILD if sqlite else POSTGRES_REBUILD:
            connection.exec_driver_sql(statement)
    elif sqlite:
        for statement in SQLITE_DEFAULT_SETTINGS:
            connection.exec_driver_sql(statement)
    for statement in (SQLITE_TRIGGERS if sqlite else POSTGRES_TRIGGERS).values():
        connection.exec_driver_sql(statement)
