"""The seeder's store writer: on SQLite, a forked child that fills the tickets, their tags and
messages in a scratch file of its own while the parent writes the audit trail and the keyword
index.

SQLite writes one file from one connection at a time, so on a machine with two cores the seed
splits its tables across two files. The child plays the solo tickets (and hands their audit rows
and keyword-index documents to the parent), expands the cast into the stored tables
(:mod:`opsdesk.demo.expansion`, the same statements the parent would run) in a scratch file with
the same tables and indexes, and builds each table's indexes right after its rows. The parent
then copies each table into its database in one statement, which SQLite does by copying the
stored records and index entries as they are (its "transfer optimization": the destination
tables are empty and have the same definition), with no per-value work and no sorting.

(Measured at a million tickets on two cores: the child's share is the larger, so the keyword
index stays with the parent. Built in the store and copied as FTS5's own tables, it made the
seed slower.)
"""

from __future__ import annotations

import marshal
import multiprocessing
import pickle
import sqlite3
import threading
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from opsdesk.demo import expansion
from opsdesk.demo.casting import Cast, play_solo
from opsdesk.demo.conversations import MESSAGE_COLUMNS, TAG_COLUMNS, TICKET_COLUMNS, Rows, TicketPlayer

# The tables a ChildStore holds, in the order the parent copies them, with the Rows field and
# the columns of the rows played on their own.
STORED_TABLES = (
    ("tickets", "tickets", TICKET_COLUMNS),
    ("ticket_tags", "tags", TAG_COLUMNS),
    ("messages", "messages", MESSAGE_COLUMNS),
)
SEARCH_TABLE = "ticket_search"
# Negative: KiB. The child's page cache (2 GiB), so its tables and index builds stay in memory.
_STORE_CACHE_KIB = -2_097_152
_STORE_MMAP_BYTES = 8 * 1024**3


@dataclass(frozen=True, slots=True)
class ChildStore:
    """An SQLite file the child writes the stored tables into: its path, and the statements
    (taken from the parent's database) that create those tables and then their indexes."""

    path: str
    tables: tuple[str, ...]
    # Each stored table's indexes.
    indexes: dict[str, tuple[str, ...]]
    page_size: int


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def insert_played(raw: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """SQLite: the rows of tickets played on their own, after the expanded ones."""
    if rows:
        marks = ", ".join("?" for _ in columns)
        raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def fill_stored_tables(
    raw: sqlite3.Connection,
    sources: dict[str, Iterable[Sequence[object]]],
    solo: Rows,
    *,
    search: bool,
    indexes: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """Expand the stored tables (and with ``search`` the keyword index, in this same database)
    from the sources, then add the solo tickets' rows; with ``indexes``, build each table's
    right after its rows, while its pages are still in the cache (each build reads the table)."""
    expansion.write_sources(raw, "sqlite", sources)
    statements = expansion.expansion_statements("sqlite")
    for table, field, columns in STORED_TABLES:
        raw.execute(statements[table])
        insert_played(raw, table, columns, getattr(solo, field))
        for statement in (indexes or {}).get(table, ()):
            raw.execute(statement)
    if search:
        raw.execute(statements[SEARCH_TABLE])
        expansion.write_documents(raw, "sqlite", solo.documents)
    for statement in expansion.drop_statements():
        raw.execute(statement)


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
    sender: Connection,
) -> None:
    """Play the solo tickets and send their audit rows and documents, then fill the store and
    build its indexes. (If the parent fails meanwhile, it removes the file.)"""
    handing: threading.Thread | None = None
    try:
        solo, next_message_id = play_solo(cast, player)
        # marshal: plain tuples of str/int/None, twice as fast to write as pickle. Sent from a
        # thread: the parent reads them when its own expansion is done, and this process must
        # not wait for that.
        message = _SOLO + marshal.dumps((solo_audit(solo), solo.documents, next_message_id))
        handing = threading.Thread(target=sender.send_bytes, args=(message,), daemon=True)
        handing.start()
        database = sqlite3.connect(store.path, isolation_level=None)
        # A scratch file: nothing to recover if this process dies.
        database.execute(f"PRAGMA page_size={store.page_size}")
        database.execute("PRAGMA journal_mode=OFF")
        database.execute("PRAGMA synchronous=OFF")
        database.execute("PRAGMA temp_store=MEMORY")
        database.execute(f"PRAGMA cache_size={_STORE_CACHE_KIB}")
        # Index builds read their table through the file mapping rather than a read() per page.
        database.execute(f"PRAGMA mmap_size={_STORE_MMAP_BYTES}")
        database.execute("BEGIN")
        for statement in store.tables:
            database.execute(statement)
        fill_stored_tables(database, sources, solo, search=False, indexes=store.indexes)
        database.execute("COMMIT")
        database.close()
        handing.join()
        _send_control(sender, "stored", None)
    except BaseException:  # reported to the parent, which raises
        if handing is not None:
            handing.join()
        _send_control(sender, "failed", traceback.format_exc())
    finally:
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
        self._receiver: Connection | None = None
        self._process: BaseProcess | None = None

    def __enter__(self) -> StoreWriter:
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        # Forked: the child starts with the cast (a million plan rows, the shapes) in memory. It
        # never touches this process's database connection.
        self._process = context.Process(
            target=_store_writer,
            args=(self.store, self.cast, self.player, self.sources, sender),
            name="opsdesk-seed-store",
            daemon=True,
        )
        self._process.start()
        sender.close()
        self._receiver = receiver
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._receiver is not None:
            self._receiver.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()

    def _receive(self) -> bytes:
        if self._receiver is None:
            raise RuntimeError("use StoreWriter in a with block")
        try:
            message = self._receiver.recv_bytes()
        except EOFError:
            raise RuntimeError("the seed's store writer process ended early") from None
        return message

    @staticmethod
    def _control(message: bytes, expected: str) -> None:
        if message[:1] != _CONTROL:
            raise RuntimeError("the seed's store writer sent something out of turn")
        kind, payload = pickle.loads(memoryview(message)[1:])  # noqa: S301 - from our own forked child
        if kind != expected:
            raise RuntimeError(f"the seed's store writer failed:\n{payload}")

    def solo_rows(self) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int]:
        """The solo tickets' audit rows and keyword-index documents, and the next free message
        id after their messages."""
        message = self._receive()
        if message[:1] != _SOLO:
            self._control(message, "solo rows")
        audit, documents, next_message_id = marshal.loads(memoryview(message)[1:])  # noqa: S302 - our child
        return audit, documents, next_message_id

    def stored(self) -> None:
        """Wait until the child has filled and indexed the store; raise what it failed with."""
        self._control(self._receive(), "stored")
