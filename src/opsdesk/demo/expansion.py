"""Expanding cast tickets into rows inside the database: one ``INSERT … SELECT`` per table.

The cast (:mod:`opsdesk.demo.casting`) and the shapes (:mod:`opsdesk.demo.shapes`) go into
temporary source tables: a million plan rows of seven integers, a few tens of thousands of shapes
and the people. Each target table is then filled by joining every planned ticket to its shape's
rows, with the placeholders swapped for the ticket's requester and agent and the offsets added to
its arrival. The database does per row what Python did before (format instants, build texts),
without a Python object per row or value: the bulk of a seed runs at the engine's own speed.

The same statements run on SQLite and PostgreSQL apart from a few expressions (:class:`_Dialect`);
on SQLite they take a raw ``sqlite3`` connection, so the seeder's store writer (a forked child with
a scratch file of its own) runs them too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opsdesk.demo.bulk_rows import insert_rows
from opsdesk.demo.casting import PLAN_COLUMNS, Cast
from opsdesk.demo.conversations import AUDIT_COLUMNS, MESSAGE_COLUMNS, TAG_COLUMNS, TICKET_COLUMNS
from opsdesk.demo.shapes import (
    AGENT_FIRST_NAME,
    AGENT_ID,
    AGENT_NAME,
    REQUESTER_EMAIL_JSON,
    REQUESTER_FIRST_NAME,
    REQUESTER_ID,
    REQUESTER_NAME,
    SHAPE_TICKET_COLUMNS,
)
from opsdesk.tickets.service.search import POSTGRES_DOCUMENT

SQLITE_SEARCH_COLUMNS = ("rowid", "subject", "body")
# The people of the cast: (id, name, first name, email, language, account id) and (id, name, first name).
REQUESTER_COLUMNS = ("id", "name", "first_name", "email", "language", "account_id")
AGENT_COLUMNS = ("id", "name", "first_name")
_INSTANT_COLUMNS = tuple(name for name in SHAPE_TICKET_COLUMNS if name.endswith("_at"))
_INTEGER_COLUMNS = {
    "custom_status_id",
    "assignee_id",
    "group_id",
    "reopened_count",
    "staff_public_reply_count",
    "customer_message_count",
    "handle_seconds",
    "satisfaction_score",
}


@dataclass(frozen=True, slots=True)
class _Dialect:
    name: str
    integer: str
    boolean: str
    json: str
    chr_function: str

    def instant(self, offset: str) -> str:
        """The text (SQLite) or timestamp (PostgreSQL) of the arrival plus an offset; NULL stays NULL."""
        if self.name == "sqlite":
            # datetime() is strftime() with this format, at twice its speed.
            return f"datetime(p.created + {offset}, 'unixepoch') || '.000000'"
        return f"to_timestamp(p.created + {offset})"

    def reply_token(self) -> str:
        if self.name == "sqlite":
            return "printf('%08x%08x', p.id, p.token)"
        return "lpad(to_hex(p.id), 8, '0') || lpad(to_hex(p.token), 8, '0')"

    def created_with_email(self) -> str:
        """The "created" event's JSON with the requester's email in place of the placeholder."""
        if self.name == "sqlite":
            return f"replace(a.new_value, '{REQUESTER_EMAIL_JSON}', json_quote(r.email))"
        return "a.new_value || jsonb_build_object('requester', r.email)"

    def char(self, text: str) -> str:
        return f"{self.chr_function}({ord(text)})"

    def named(self, column: str, agent: str = "g") -> str:
        """A text with the requester's and the agent's first names in place of the placeholders."""
        return (
            f"replace(replace({column}, {self.char(REQUESTER_FIRST_NAME)}, r.first_name), "
            f"{self.char(AGENT_FIRST_NAME)}, {agent}.first_name)"
        )


_SQLITE = _Dialect("sqlite", "INTEGER", "INTEGER", "TEXT", "char")
_POSTGRES = _Dialect("postgresql", "bigint", "boolean", "jsonb", "chr")


def dialect_named(name: str) -> _Dialect:
    return _SQLITE if name == "sqlite" else _POSTGRES


def _source_tables(dialect: _Dialect) -> dict[str, tuple[str, ...]]:
    """Each source table and its column definitions (key columns first)."""
    integer, boolean, json = dialect.integer, dialect.boolean, dialect.json

    def shape_type(name: str) -> str:
        if name in _INTEGER_COLUMNS or name in _INSTANT_COLUMNS:
            return integer
        return json if name == "custom_fields" else "TEXT"

    shape_columns = tuple(f"{name} {shape_type(name)}" for name in SHAPE_TICKET_COLUMNS)
    return {
        "seed_plan": tuple(f"{name} {integer}" for name in PLAN_COLUMNS),
        "seed_requesters": (
            f"id {integer}",
            "name TEXT",
            "first_name TEXT",
            "email TEXT",
            "language TEXT",
            f"account_id {integer}",
        ),
        "seed_agents": (f"id {integer}", "name TEXT", "first_name TEXT"),
        "seed_shapes": (f"shape {integer}", *shape_columns, "document TEXT"),
        "seed_shape_messages": (
            f"shape {integer}",
            f"position {integer}",
            "author_kind TEXT",
            f"staff {boolean}",
            f"public {boolean}",
            "body TEXT",
            "channel TEXT",
            f"at {integer}",
        ),
        "seed_shape_tags": (f"shape {integer}", "tag TEXT"),
        "seed_shape_audit": (
            f"shape {integer}",
            f"position {integer}",
            "entity_type TEXT",
            f"message_position {integer}",
            "action TEXT",
            "field TEXT",
            f"old_value {json}",
            f"new_value {json}",
            "actor_kind TEXT",
            f"actor_id {integer}",
            "actor_name TEXT",
            "via TEXT",
            f"at {integer}",
        ),
    }


# The key of each source table: SQLite stores them as clustered B-trees on it, so every join below
# is a lookup and rows come out in plan order.
_KEYS = {
    "seed_plan": ("id",),
    "seed_requesters": ("id",),
    "seed_agents": ("id",),
    "seed_shapes": ("shape",),
    "seed_shape_messages": ("shape", "position"),
    "seed_shape_tags": ("shape", "tag"),
    "seed_shape_audit": ("shape", "position"),
}


def source_statements(dialect_name: str, tables: Iterable[str], *, temporary: bool = False) -> list[str]:
    dialect = dialect_named(dialect_name)
    definitions = _source_tables(dialect)
    statements = []
    for table in tables:
        columns = definitions[table]
        key = ", ".join(_KEYS[table])
        if dialect.name == "sqlite":
            rowid = len(_KEYS[table]) == 1 and columns[0].endswith("INTEGER")
            primary = (
                f"{columns[0].split()[0]} INTEGER PRIMARY KEY, {', '.join(columns[1:])}"
                if rowid
                else f"{', '.join(columns)}, PRIMARY KEY ({key})"
            )
            suffix = "" if rowid else " WITHOUT ROWID"
            statements.append(f"CREATE TEMP TABLE {table} ({primary}){suffix}")
        else:
            # Unlogged rather than temporary: parallel workers may scan these (not a session's
            # temporary tables), and the keyword documents are made in parallel. Dropped after
            # the expansion, or by the rollback of a failed load.
            kind = "TEMPORARY" if temporary else "UNLOGGED"
            suffix = " ON COMMIT DROP" if temporary else ""
            statements.append(
                f"CREATE {kind} TABLE {table} ({', '.join(columns)}, PRIMARY KEY ({key})){suffix}"
            )
    return statements


def source_rows(
    cast: Cast, requesters: Iterable[Sequence[object]], agents: Iterable[Sequence[object]]
) -> dict[str, Iterable[Sequence[object]]]:
    shapes = cast.shapes
    return {
        "seed_plan": cast.planned,
        "seed_requesters": requesters,
        "seed_agents": agents,
        "seed_shapes": [
            (*ticket, document)
            for ticket, (_, document) in zip(shapes.tickets, shapes.documents, strict=True)
        ],
        "seed_shape_messages": shapes.messages,
        "seed_shape_tags": shapes.tags,
        "seed_shape_audit": shapes.audit,
    }


def source_columns(dialect_name: str) -> dict[str, tuple[str, ...]]:
    return {
        table: tuple(column.split()[0] for column in columns)
        for table, columns in _source_tables(dialect_named(dialect_name)).items()
    }


def expansion_statements(dialect_name: str) -> dict[str, str]:
    """The ``INSERT … SELECT`` filling each target table from the sources (``ticket_search``: the
    keyword index, see :func:`opsdesk.tickets.service.search.suspended_index`)."""
    dialect = dialect_named(dialect_name)
    instant = dialect.instant
    requester_id, agent_id = REQUESTER_ID, AGENT_ID
    join = "CROSS JOIN" if dialect.name == "sqlite" else "JOIN"
    people = f"{join} seed_requesters r ON r.id = p.requester_id {join} seed_agents g ON g.id = p.agent_id"
    ticket_values = {
        **{name: f"s.{name}" for name in SHAPE_TICKET_COLUMNS},
        **{name: instant(f"s.{name}") for name in _INSTANT_COLUMNS},
        "id": "p.id",
        "language": "r.language",
        "requester_id": "p.requester_id",
        "account_id": "r.account_id",
        "assignee_id": "CASE WHEN s.assignee_id IS NOT NULL THEN p.agent_id END",
        "reply_token": dialect.reply_token(),
    }
    message_values = {
        "id": "p.first_message_id + m.position",
        "ticket_id": "p.id",
        "author_kind": "m.author_kind",
        "author_user_id": "CASE WHEN m.staff THEN p.agent_id END",
        "author_person_id": "CASE WHEN m.staff THEN NULL ELSE p.requester_id END",
        "is_public": "m.public",
        "body_text": dialect.named("m.body"),
        "channel": "m.channel",
        "created_at": instant("m.at"),
    }
    audit_values = {
        "ticket_id": "p.id",
        "entity_type": "a.entity_type",
        "entity_id": (
            "CASE WHEN a.message_position IS NULL THEN p.id ELSE p.first_message_id + a.message_position END"
        ),
        "action": "a.action",
        "field": "a.field",
        "old_value": "a.old_value",
        "new_value": (
            f"CASE WHEN a.action = 'created' THEN {dialect.created_with_email()} ELSE a.new_value END"
        ),
        "actor_kind": "a.actor_kind",
        "actor_id": (
            f"CASE a.actor_id WHEN {requester_id} THEN p.requester_id "
            f"WHEN {agent_id} THEN p.agent_id ELSE a.actor_id END"
        ),
        "actor_name": (
            f"CASE a.actor_name WHEN {dialect.char(REQUESTER_NAME)} THEN r.name "
            f"WHEN {dialect.char(AGENT_NAME)} THEN g.name ELSE a.actor_name END"
        ),
        "via": "a.via",
        "created_at": instant("a.at"),
    }

    def select(target: str, columns: Sequence[str], values: dict[str, str], source: str) -> str:
        return (
            f"INSERT INTO {target} ({', '.join(columns)}) "
            f"SELECT {', '.join(values[column] for column in columns)} FROM seed_plan p {source}"
        )

    statements = {
        "tickets": select(
            "tickets",
            TICKET_COLUMNS,
            ticket_values,
            f"{join} seed_shapes s ON s.shape = p.shape {join} seed_requesters r ON r.id = p.requester_id",
        ),
        "ticket_tags": select(
            "ticket_tags",
            TAG_COLUMNS,
            {"ticket_id": "p.id", "tag": "t.tag"},
            f"{join} seed_shape_tags t ON t.shape = p.shape",
        ),
        "messages": select(
            "messages",
            MESSAGE_COLUMNS,
            message_values,
            f"{join} seed_shape_messages m ON m.shape = p.shape {people}",
        ),
        "audit_events": select(
            "audit_events",
            AUDIT_COLUMNS,
            audit_values,
            f"{join} seed_shape_audit a ON a.shape = p.shape {people}",
        ),
    }
    search_source = f"{join} seed_shapes s ON s.shape = p.shape {people}"
    if dialect.name == "sqlite":
        statements["ticket_search"] = select(
            "ticket_search",
            SQLITE_SEARCH_COLUMNS,
            {"rowid": "p.id", "subject": "s.subject", "body": dialect.named("s.document")},
            search_source,
        )
    else:
        statements["ticket_search"] = _postgres_shaped_documents(dialect, search_source)
    return statements


# PostgreSQL: words standing for the requester's and the agent's first names in a shape's
# document vector (one token, one lexeme each, never in a seeded text).
_REQUESTER_WORD, _AGENT_WORD = "zqreqzq", "zqagtzq"


def _postgres_shaped_documents(dialect: _Dialect, search_source: str) -> str:
    """PostgreSQL: each ticket's keyword document from its shape's, without parsing its texts.

    A shape's document is parsed once, with a word of its own where each first name goes. A
    first name that is one word (one lexeme at one position: every name the seed uses) changes
    nothing else in the vector, so a ticket's document is its shape's with those two lexemes
    renamed, read back by ``tsvector``'s input (which merges a lexeme that occurs twice). Tickets
    with any other name are parsed in full. Either way the document is the one
    :data:`~opsdesk.tickets.service.search.POSTGRES_DOCUMENT` makes of the ticket's texts.
    """
    placeholders = (
        f"replace(replace(s.document, {dialect.char(REQUESTER_FIRST_NAME)}, '{_REQUESTER_WORD}'), "
        f"{dialect.char(AGENT_FIRST_NAME)}, '{_AGENT_WORD}')"
    )
    shape_document = POSTGRES_DOCUMENT.format(subject="s.subject", body=placeholders)
    document = POSTGRES_DOCUMENT.format(subject="s.subject", body=dialect.named("s.document"))
    quoted_requester, quoted_agent = f"'''{_REQUESTER_WORD}'''", f"'''{_AGENT_WORD}'''"
    renamed = (
        f"replace(replace(v.document, {quoted_requester}, rn.lexeme), {quoted_agent}, gn.lexeme)::tsvector"
    )
    names = "SELECT first_name AS name FROM seed_requesters UNION SELECT first_name FROM seed_agents"
    one_word = (
        "length(to_tsvector('english', name)) = 1 "
        "AND to_tsvector('english', name)::text LIKE '%:1'"  # one lexeme, at one position
    )
    simple = "SELECT name FROM seed_name_lexemes"
    return ";\n".join(
        (
            "CREATE UNLOGGED TABLE seed_shape_documents AS "
            f"SELECT s.shape, ({shape_document})::text AS document FROM seed_shapes s",
            "CREATE UNLOGGED TABLE seed_name_lexemes AS "
            "SELECT name, strip(to_tsvector('english', name))::text AS lexeme "
            f"FROM ({names}) n WHERE {one_word}",
            "ANALYZE seed_shape_documents, seed_name_lexemes",
            _postgres_documents(
                f"SELECT p.id, {renamed} FROM seed_plan p "
                "JOIN seed_shape_documents v ON v.shape = p.shape "
                "JOIN seed_requesters r ON r.id = p.requester_id JOIN seed_agents g ON g.id = p.agent_id "
                "JOIN seed_name_lexemes rn ON rn.name = r.first_name "
                "JOIN seed_name_lexemes gn ON gn.name = g.first_name "
                f"UNION ALL SELECT p.id, {document} FROM seed_plan p {search_source} "
                f"WHERE r.first_name NOT IN ({simple}) OR g.first_name NOT IN ({simple})"
            ),
            "DROP TABLE seed_shape_documents",
            "DROP TABLE seed_name_lexemes",
        )
    )


def _postgres_documents(select: str) -> str:
    """PostgreSQL: the keyword documents ``select`` makes (ticket id, document), into the index.

    Parsing and stemming the texts is most of the work, and only ``CREATE TABLE AS`` may run its
    query on parallel workers: the vectors are made that way (on every core), then inserted.
    """
    return ";\n".join(
        (
            "SET LOCAL parallel_setup_cost = 0",
            "SET LOCAL parallel_tuple_cost = 0",
            "SET LOCAL min_parallel_table_scan_size = 0",
            f"CREATE TEMPORARY TABLE seed_vectors (ticket_id, document) ON COMMIT DROP AS {select}",
            "RESET parallel_setup_cost",
            "RESET parallel_tuple_cost",
            "RESET min_parallel_table_scan_size",
            "INSERT INTO ticket_search (ticket_id, document) SELECT ticket_id, document FROM seed_vectors",
            "DROP TABLE seed_vectors",
        )
    )


def write_documents(raw: Any, dialect_name: str, documents: Sequence[Sequence[object]]) -> None:
    """The keyword index rows of tickets given as (id, subject, messages' texts one per line)."""
    if not documents:
        return
    if dialect_name == "sqlite":
        insert_rows(raw, "sqlite", "ticket_search", SQLITE_SEARCH_COLUMNS, documents)
        return
    with raw.cursor() as cursor:
        # Unlogged, not temporary: see _postgres_documents.
        cursor.execute("CREATE UNLOGGED TABLE seed_documents (id bigint, subject text, body text)")
    insert_rows(raw, "postgresql", "seed_documents", ("id", "subject", "body"), documents)
    with raw.cursor() as cursor:
        document = POSTGRES_DOCUMENT.format(subject="d.subject", body="d.body")
        cursor.execute(_postgres_documents(f"SELECT d.id, {document} FROM seed_documents d"))
        cursor.execute("DROP TABLE seed_documents")


def drop_statements() -> list[str]:
    return [f"DROP TABLE IF EXISTS {table}" for table in _KEYS]


# The source tables each target table's expansion reads.
_SOURCES_OF = {
    "tickets": ("seed_plan", "seed_shapes", "seed_requesters"),
    "ticket_tags": ("seed_plan", "seed_shape_tags"),
    "messages": ("seed_plan", "seed_shape_messages", "seed_requesters", "seed_agents"),
    "audit_events": ("seed_plan", "seed_shape_audit", "seed_requesters", "seed_agents"),
    "ticket_search": ("seed_plan", "seed_shapes", "seed_requesters", "seed_agents"),
}


def sources_for(
    sources: dict[str, Iterable[Sequence[object]]], tables: Iterable[str]
) -> dict[str, Iterable[Sequence[object]]]:
    """The sources the expansion of ``tables`` reads (a writer fills no others)."""
    needed = {source for table in tables for source in _SOURCES_OF[table]}
    return {table: rows for table, rows in sources.items() if table in needed}


def write_sources(
    raw: Any, dialect_name: str, rows: dict[str, Iterable[Sequence[object]]], *, temporary: bool = False
) -> None:
    """Create the given source tables on a raw driver connection and fill them (PostgreSQL: as
    a session's temporary tables with ``temporary``, for a second connection loading at the same
    time: the unlogged ones of the first are not visible to it, and their names are taken)."""
    columns = source_columns(dialect_name)
    statements = source_statements(dialect_name, rows, temporary=temporary)
    if dialect_name == "sqlite":
        for statement in statements:
            raw.execute(statement)
    else:
        with raw.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    for table, table_rows in rows.items():
        insert_rows(raw, dialect_name, table, columns[table], table_rows)
    if dialect_name != "sqlite":
        with raw.cursor() as cursor:
            cursor.execute(f"ANALYZE {', '.join(rows)}")
