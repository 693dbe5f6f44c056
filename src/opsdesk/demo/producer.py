"""The seeder's store writer: on SQLite, a forked child that fills the messages and the tickets
in scratch files of its own while the parent writes the audit trail, the tags and the keyword
index.

SQLite writes one file from one connection at a time, so on a machine with two cores the seed
splits its tables across files. The child plays the solo tickets (and hands their audit rows,
tags and keyword-index documents to the parent on a pipe of their own), then expands the cast
(:mod:`opsdesk.demo.expansion`, the same statements the parent would run) into the store's parts
(:data:`STORE_PARTS`): one file each, with the same tables and indexes as the database, each
table's indexes built right after its rows, each part committed and reported when done. The
parent copies a part as soon as it is reported, one statement per table, which SQLite runs by
copying the stored records and index entries as they are (its "transfer optimization": the
destination tables are empty and have the same definition), with no per-value work and no
sorting; so the messages are copied while the child still writes the tickets.

(Measured at a million tickets on two cores. Building the keyword index in the store and copying
it as FTS5's own tables made the seed slower: the child's share was already the larger.)
"""

from __future__ import annotations

import marshal
import multiprocessing
import pickle
import re
import sqlite3
import threading
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType

from opsdesk.demo import expansion
from opsdesk.demo.bulk_rows import insert_rows
from opsdesk.demo.casting import Cast, play_solo
from opsdesk.demo.conversations import MESSAGE_COLUMNS, TAG_COLUMNS, TICKET_COLUMNS, Rows, TicketPlayer

# The tables a ChildStore holds, with the Rows field and the columns of the rows played on their
# own.
STORED_TABLES = (
    ("messages", "messages", MESSAGE_COLUMNS),
    ("tickets", "tickets", TICKET_COLUMNS),
    ("ticket_tags", "tags", TAG_COLUMNS),
)
# The store's parts, one file each, filled and handed over in this order: the parent copies the
# messages while the child still writes the tickets. (The tags are the parent's: at a million
# tickets, the child's share is the larger.)
STORE_PARTS = (("messages",), ("tickets",))
# Negative: KiB. The child's page cache (2 GiB), so its tables and index builds stay in memory.
_STORE_CACHE_KIB = -2_097_152
_STORE_MMAP_BYTES = 8 * 1024**3


@dataclass(frozen=True, slots=True)
class ChildStore:
    """The SQLite files the child writes the stored tables into (one per :data:`STORE_PARTS`
    part), and the statements (taken from the parent's database) that create each table and its
    indexes."""

    paths: tuple[str, ...]
    tables: dict[str, str]
    indexes: dict[str, tuple[str, ...]]
    page_size: int


def in_schema(statement: str, schema: str) -> str:
    """A ``CREATE TABLE`` or ``CREATE INDEX`` statement for the same object in another schema
    (an attached database): SQLite puts the schema before the new object's name."""
    return re.sub(r"^(CREATE (?:UNIQUE )?(?:TABLE|INDEX) )", rf"\1{schema}.", statement, count=1)


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


_SOLO_FIELDS = {table: (field, columns) for table, field, columns in STORED_TABLES}


def fill_stored_table(raw: sqlite3.Connection, table: str, solo: Rows, indexes: Sequence[str] = ()) -> None:
    """SQLite: create ``indexes`` (empty), then expand one stored table from the sources (see
    :func:`expansion.write_sources`) and add the solo tickets' rows.

    The expansion writes rows in id order, so most index keys arrive in order too (times,
    statuses, groups) and the store's cache holds every index: keeping them up to date as rows
    arrive beat building each afterwards, which scans the whole table and sorts it once per index
    (at a million tickets, the tickets' seventeen indexes: 19.1 s against 22.1 s; the messages'
    two: even)."""
    for statement in indexes:
        raw.execute(statement)
    raw.execute(expansion.expansion_statements("sqlite")[table])
    field, columns = _SOLO_FIELDS[table]
    if rows := getattr(solo, field):
        insert_rows(raw, "sqlite", table, columns, rows)


def solo_audit(solo: Rows) -> list[tuple[object, ...]]:
    """The solo tickets' audit rows in the order they are written: created events first."""
    return solo.created_audit + solo.audit + solo.message_audit


# Messages from the child: the solo tickets' audit rows and documents (marshal) or a control
# message (pickle), by first byte.
_SOLO, _CONTROL = b"S", b"C"


def _send_control(sender: Connection, kind: str, payload: object) -> None:
    sender.send_bytes(_CONTROL + pickle.dumps((kind, payload)))


def _store_writer(
    store: ChildStore,
    cast: Cast,
    player: TicketPlayer,
    sources: dict[str, Iterable[Sequence[object]]],
    solo_sender: Connection,
    sender: Connection,
) -> None:
    """Play the solo tickets and send their audit rows, tags and documents (on ``solo_sender``), then
    fill the store part by part, reporting each on ``sender``. (If the parent fails meanwhile, it
    removes the files.)"""
    handing: threading.Thread | None = None
    try:
        solo, next_message_id = play_solo(cast, player)
        # marshal: plain tuples of str/int/None, twice as fast to write as pickle. Sent from a
        # thread, on a pipe of its own: the parent reads them when its own expansion is done,
        # and this process must not wait for that.
        message = _SOLO + marshal.dumps((solo_audit(solo), solo.tags, solo.documents, next_message_id))
        handing = threading.Thread(target=solo_sender.send_bytes, args=(message,), daemon=True)
        handing.start()
        database = sqlite3.connect(store.paths[0], isolation_level=None)
        schemas = ["main"]
        for number, path in enumerate(store.paths[1:], start=1):
            schemas.append(f"part{number}")
            database.execute(f"ATTACH DATABASE ? AS {schemas[-1]}", (path,))
        for schema in schemas:
            # Scratch files: nothing to recover if this process dies.
            database.execute(f"PRAGMA {schema}.page_size={store.page_size}")
            database.execute(f"PRAGMA {schema}.journal_mode=OFF")
            database.execute(f"PRAGMA {schema}.synchronous=OFF")
            database.execute(f"PRAGMA {schema}.cache_size={_STORE_CACHE_KIB}")
            # Index builds read their table through the file mapping rather than a read() per page.
            database.execute(f"PRAGMA {schema}.mmap_size={_STORE_MMAP_BYTES}")
        database.execute("PRAGMA temp_store=MEMORY")
        # The sources are temporary tables of this connection: written once, used by every part.
        stored = [table for tables in STORE_PARTS for table in tables]
        expansion.write_sources(database, "sqlite", expansion.sources_for(sources, stored))
        for number, (schema, tables) in enumerate(zip(schemas, STORE_PARTS, strict=True)):
            database.execute("BEGIN")
            for table in tables:
                database.execute(in_schema(store.tables[table], schema))
            for table in tables:
                indexes = [in_schema(statement, schema) for statement in store.indexes[table]]
                fill_stored_table(database, table, solo, indexes)
            database.execute("COMMIT")
            _send_control(sender, "stored", number)
        database.close()
    except BaseException:  # reported to the parent, which raises
        failure = traceback.format_exc()
        if handing is None:  # the parent may be waiting for the solo rows
            _send_control(solo_sender, "failed", failure)
        _send_control(sender, "failed", failure)
    finally:
        if handing is not None:
            handing.join()
        solo_sender.close()
        sender.close()


class StoreWriter:
    """A forked child filling a :class:`ChildStore` from the cast while this process goes on.
    Use as a context manager: leaving it stops the child if it still runs."""

    def __init__(
        self,
        store: ChildStore,
        cast: Cast,
        player: TicketPlayer,
        sources: dict[str, Iterable[Sequence[object]]],
    ) -> None:
        self.store = store
        self.cast = cast
        self.player = player
        self.sources = sources
        self._solo_receiver: Connection | None = None
        self._receiver: Connection | None = None
        self._process: BaseProcess | None = None

    def __enter__(self) -> StoreWriter:
        context = multiprocessing.get_context("fork")
        solo_receiver, solo_sender = context.Pipe(duplex=False)
        receiver, sender = context.Pipe(duplex=False)
        # Forked: the child starts with the cast (a million plan rows, the shapes) in memory. It
        # never touches this process's database connection.
        self._process = context.Process(
            target=_store_writer,
            args=(self.store, self.cast, self.player, self.sources, solo_sender, sender),
            name="opsdesk-seed-store",
            daemon=True,
        )
        self._process.start()
        solo_sender.close()
        sender.close()
        self._solo_receiver, self._receiver = solo_receiver, receiver
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for receiver in (self._solo_receiver, self._receiver):
            if receiver is not None:
                receiver.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()

    @staticmethod
    def _receive(receiver: Connection | None) -> bytes:
        if receiver is None:
            raise RuntimeError("use StoreWriter in a with block")
        try:
            return receiver.recv_bytes()
        except EOFError:
            raise RuntimeError("the seed's store writer process ended early") from None

    @staticmethod
    def _control(message: bytes, expected: str) -> object:
        if message[:1] != _CONTROL:
            raise RuntimeError("the seed's store writer sent something out of turn")
        kind, payload = pickle.loads(memoryview(message)[1:])  # noqa: S301 - from our own forked child
        if kind != expected:
            raise RuntimeError(f"the seed's store writer failed:\n{payload}")
        return payload

    def solo_rows(self) -> tuple[Rows, int]:
        """The solo tickets' rows this process writes (audit, tags, keyword-index documents),
        and the next free message id after their messages."""
        message = self._receive(self._solo_receiver)
        if message[:1] != _SOLO:
            self._control(message, "solo rows")
        audit, tags, documents, next_message_id = marshal.loads(memoryview(message)[1:])  # noqa: S302 - our child
        return Rows(tags=tags, audit=audit, documents=documents), next_message_id

    def stored(self, part: int) -> None:
        """Wait until the child has filled and indexed the store's ``part``; raise what it failed
        with."""
        finished = self._control(self._receive(self._receiver), "stored")
        if finished != part:
            raise RuntimeError(f"the seed's store writer finished part {finished}, not {part}")
