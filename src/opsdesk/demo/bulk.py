"""Bulk writing for the seeder: many rows per round trip, on the session's own connection.

SQLite gets ``executemany`` on the raw driver connection; PostgreSQL gets ``COPY … FROM STDIN``.
Rows carry values already in the database's wire form (instants as text from
:class:`InstantFormat`, JSON as text), so no per-value conversion happens in Python. The writer
joins the caller's transaction and never commits; ids are assigned by the caller so related rows
can be written without reading anything back, and PostgreSQL sequences are moved past them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence, Sized
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from opsdesk.db import Database
from opsdesk.demo import expansion
from opsdesk.demo.bulk_rows import insert_rows
from opsdesk.demo.producer import ChildStore

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Set on the session of :func:`load_transaction`: scratch databases attached during the load are
# detached once it ends (SQLite cannot detach inside a transaction).
BULK_LOAD_KEY = "opsdesk_bulk_load"
STORE_SCHEMA = "opsdesk_seed_store"
# Set on the session of :func:`load_transaction` on PostgreSQL: the side loads to commit with it.
SIDE_LOADS_KEY = "opsdesk_side_loads"
# A negative cache_size is in KiB: up to 1 GiB of pages for a bulk load (memory is only used as
# the load grows into it).
BULK_CACHE_KIB = -1_048_576
BULK_MMAP_BYTES = 8 * 1024**3


def store_schema(part: int) -> str:
    """The schema a store's file is attached as while its tables are copied."""
    return STORE_SCHEMA if part == 0 else f"{STORE_SCHEMA}_{part}"


class InstantFormat:
    """Epoch seconds to the text each database stores for a UTC instant, with a per-day cache
    (formatting is the hot path of seeding a million tickets)."""

    def __init__(self, dialect: str) -> None:
        # SQLAlchemy's SQLite DateTime storage format, and an explicit UTC offset for PostgreSQL.
        suffix = ".000000" if dialect == "sqlite" else "+00"
        self._days: dict[int, str] = {}
        self._seconds = [
            f" {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}{suffix}"
            for second in range(86_400)
        ]

    def __call__(self, epoch: int) -> str:
        prefix = self._days.get(epoch // 86_400)
        if prefix is None:
            prefix = (_EPOCH + timedelta(days=epoch // 86_400)).strftime("%Y-%m-%d")
            self._days[epoch // 86_400] = prefix
        return prefix + self._seconds[epoch % 86_400]

    def texts(self, epochs: Sequence[int], *, absent: Iterable[int] = ()) -> list[str | None]:
        """The text of each epoch, as calling this per epoch gives, and ``None`` at the positions
        in ``absent`` (a NULL instant). For columns of many values: no Python call per value."""
        if not epochs:
            return []
        days, seconds = self._days, self._seconds
        for day in range(min(epochs) // 86_400, max(epochs) // 86_400 + 1):
            if day not in days:
                days[day] = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d")
        texts: list[str | None] = [days[epoch // 86_400] + seconds[epoch % 86_400] for epoch in epochs]
        for position in absent:
            texts[position] = None
        return texts


def epoch_of(instant: datetime) -> int:
    return int((instant - _EPOCH).total_seconds())


class BulkWriter:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.connection().dialect.name
        self.instant = InstantFormat(self.dialect)

    def raw_connection(self) -> Any:
        # Asked for every time: a commit between batches may hand the session another connection.
        return self.session.connection().connection.driver_connection

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        # Rows may come from an iterator (a zip over columns: one tuple at a time, reused).
        if isinstance(rows, Sized) and not rows:
            return
        insert_rows(self.raw_connection(), self.dialect, table, columns, rows)

    def expand(self, sources: dict[str, Iterable[Sequence[object]]], tables: Sequence[str]) -> None:
        """Fill ``tables`` from a cast's sources (:mod:`opsdesk.demo.expansion`), one statement each."""
        raw = self.raw_connection()
        expansion.write_sources(raw, self.dialect, expansion.sources_for(sources, tables))
        statements = expansion.expansion_statements(self.dialect)
        for table in tables:
            raw.execute(statements[table])
        for statement in expansion.drop_statements():
            raw.execute(statement)

    @contextlib.contextmanager
    def bulk_load_tuning(self) -> Iterator[None]:
        """SQLite settings for one big load on this connection, restored afterwards.

        A page cache large enough to hold the load keeps SQLite from spilling half-built B-trees
        to the WAL mid-transaction, worker threads let ``CREATE INDEX`` sort on both cores, and
        the expansion's source tables stay in memory.
        """
        if self.dialect != "sqlite":
            yield
            return
        names = ("cache_size", "threads", "temp_store", "mmap_size")
        previous = {name: self.session.execute(text(f"PRAGMA {name}")).scalar_one() for name in names}
        self.session.execute(text(f"PRAGMA cache_size={BULK_CACHE_KIB}"))
        self.session.execute(text("PRAGMA threads=2"))
        self.session.execute(text("PRAGMA temp_store=MEMORY"))
        self.session.execute(text(f"PRAGMA mmap_size={BULK_MMAP_BYTES}"))
        try:
            yield
        finally:
            for name, value in previous.items():
                self.session.execute(text(f"PRAGMA {name}={int(value)}"))

    @contextlib.contextmanager
    def without_foreign_keys(self, tables: Sequence[str]) -> Iterator[None]:
        """PostgreSQL: drop the tables' foreign keys for a bulk load and add them again after.

        ``COPY`` fires a referential-integrity check per row; adding the constraint back validates
        every row in one join instead. Transactional like the indexes: a failure restores them.
        (SQLite checks foreign keys only when the connection enables them, which
        :func:`load_transaction` turns off for the load.)
        """
        if self.dialect != "postgresql":
            yield
            return
        rows = self.session.execute(
            text(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid = ANY(CAST(:tables AS regclass[]))"
            ),
            {"tables": list(tables)},
        ).all()
        for table, name, _ in rows:
            self.session.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        yield
        for table, name, definition in rows:
            self.session.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))

    @contextlib.contextmanager
    def without_indexes(self, tables: Sequence[str]) -> Iterator[None]:
        """Drop the tables' plain secondary indexes for a bulk load and build them again after.

        Building an index once over sorted data is several times faster than updating it row by
        row. Index DDL is transactional on both databases, so the caller's transaction makes the
        whole load atomic: a failure rolls back the rows and restores the indexes together.
        Indexes that back a constraint (primary keys, unique constraints) stay.
        """
        definitions: list[tuple[str, str]] = []
        for table in tables:
            if self.dialect == "sqlite":
                query = (
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :table "
                    "AND sql IS NOT NULL"
                )
            else:
                query = (
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table "
                    "AND schemaname = current_schema() AND indexname NOT IN "
                    "(SELECT conname FROM pg_constraint)"
                )
            definitions.extend(
                (str(name), str(sql)) for name, sql in self.session.execute(text(query), {"table": table})
            )
        for name, _ in definitions:
            self.session.execute(text(f'DROP INDEX "{name}"'))
        yield
        for _, sql in definitions:
            self.session.execute(text(sql))

    def store_for(self, tables: Sequence[str], paths: Sequence[str]) -> ChildStore:
        """SQLite: how to make files (at ``paths``, one per store part) with the same tables and
        indexes as ``tables`` here, for a child process to fill and :meth:`transfer` to copy."""
        creates: dict[str, str] = {}
        indexes: dict[str, tuple[str, ...]] = {}
        for table in tables:
            statements = self.session.execute(
                text(
                    "SELECT type, sql FROM sqlite_master WHERE tbl_name = :table "
                    "AND type IN ('table', 'index') AND sql IS NOT NULL"
                ),
                {"table": table},
            ).all()
            creates.update((table, str(sql)) for kind, sql in statements if kind == "table")
            indexes[table] = tuple(str(sql) for kind, sql in statements if kind == "index")
        page_size = int(self.session.execute(text("PRAGMA page_size")).scalar_one())
        return ChildStore(tuple(paths), creates, indexes, page_size)

    def database_directory(self) -> Path | None:
        """SQLite: the directory of the database file (None in memory)."""
        rows = self.session.execute(text("PRAGMA database_list")).all()
        path = next((str(row[2]) for row in rows if row[1] == "main"), "")
        return Path(path).parent if path else None

    def transfer(self, path: str, tables: Sequence[str], *, part: int = 0) -> None:
        """SQLite: copy ``tables`` from a filled store file into this database's tables of the
        same definition, which must be empty and without triggers: SQLite then copies records
        and index entries as stored. Only inside :func:`load_transaction`, which detaches the
        store's files (one schema per ``part``)."""
        if not self.session.info.get(BULK_LOAD_KEY):
            raise RuntimeError("a store is only transferred inside load_transaction")
        schema = store_schema(part)
        self.session.execute(text(f"ATTACH DATABASE :path AS {schema}"), {"path": path})
        for table in tables:
            self.session.execute(text(f"INSERT INTO main.{table} SELECT * FROM {schema}.{table}"))

    def analyze(self, tables: Sequence[str]) -> None:
        """PostgreSQL: ANALYZE the tables (a sample of each). SQLite plans from its indexes alone
        here; its ANALYZE reads every index in full."""
        if self.dialect == "postgresql":
            self.session.execute(text(f"ANALYZE {', '.join(tables)}"))

    def next_id(self, table: str) -> int:
        return int(self.session.execute(text(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")).scalar_one())

    def move_sequence(self, table: str) -> None:
        """After rows were written with explicit ids, make PostgreSQL's sequence continue after them."""
        if self.dialect != "postgresql":
            return
        self.session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
            )
        )


@contextlib.contextmanager
def load_transaction(database: Database) -> Iterator[Session]:
    """A write transaction on a connection of its own, set up for one big load into ``database``.

    SQLite: before ``BEGIN`` (these pragmas cannot change inside a transaction) foreign keys are
    switched off (the loader assigns every id itself; per-row parent lookups were a large share
    of the load), fsyncs are skipped, and the rollback journal replaces the WAL so the loaded
    pages are written once into the database file instead of into the WAL and then again by the
    checkpoint. A failure still rolls back (the journal holds the few pages that existed). The
    connection's previous settings are restored after the commit or rollback.
    PostgreSQL: the commit does not wait for the WAL flush, and index builds get more memory.
    Loads the seeder runs on other connections at the same time (``session.info[SIDE_LOADS_KEY]``)
    are committed right after this transaction, or rolled back with it.
    """
    with database.engine.connect() as connection:
        if database.is_sqlite:
            raw: Any = connection.connection.driver_connection
            names = ("foreign_keys", "synchronous", "journal_mode")
            previous = {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in names}
            raw.execute("PRAGMA foreign_keys=OFF")
            raw.execute("PRAGMA synchronous=OFF")
            raw.execute("PRAGMA journal_mode=DELETE")
            connection = connection.execution_options(sqlite_begin="IMMEDIATE")
            try:
                with Session(bind=connection, expire_on_commit=False) as session, session.begin():
                    session.info[BULK_LOAD_KEY] = True
                    yield session
            finally:
                attached = [
                    row[1]
                    for row in raw.execute("PRAGMA database_list")
                    if str(row[1]).startswith(STORE_SCHEMA)
                ]
                for schema in attached:
                    raw.execute(f"DETACH DATABASE {schema}")
                for name in reversed(names):
                    raw.execute(f"PRAGMA {name}={previous[name]}")
            return
        with Session(bind=connection, expire_on_commit=False) as session:
            # Loads on connections of their own (opsdesk.demo.side_load), committed right after
            # this transaction and rolled back with it.
            side_loads: list[Any] = []
            try:
                with session.begin():
                    session.execute(text("SET LOCAL synchronous_commit = off"))
                    session.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
                    # Sorts and the keyword documents' temporary table stay in memory.
                    session.execute(text("SET LOCAL work_mem = '256MB'"))
                    session.execute(text("SET LOCAL temp_buffers = '1GB'"))
                    session.info[BULK_LOAD_KEY] = True
                    session.info[SIDE_LOADS_KEY] = side_loads
                    yield session
            except BaseException:
                for side_load in side_loads:
                    side_load.rollback()
                raise
            for side_load in side_loads:
                side_load.commit()
