"""The seeder's ticket loop, in this process or in a child process that works while the parent
writes.

Playing conversations is pure Python and writing them is mostly the database's work, so on a
machine with two cores a child (forked, so it starts with the plan in memory) generates batch
``n + 1`` while the parent writes batch ``n``. The child plays exactly the calls the parent would
have, in the same order, on a copy of the parent's generator, and hands the generator's final
state back: the rows, and everything the parent draws afterwards, are the same either way.

On SQLite the child can also take a share of the writing (:class:`ChildStore`): it writes the
tickets, their tags and messages into an SQLite file of its own with the same tables and
indexes, builds those indexes at the end while the parent builds its own, and sends the parent
only the audit rows and each ticket's search document. The parent then copies the three tables
into its database in one statement each, which SQLite does by copying the stored records and
index entries as they are (its "transfer optimization": the destination tables are empty and
have the same definition), with no per-value work and no sorting.
"""

from __future__ import annotations

import marshal
import multiprocessing
import pickle
import random
import sqlite3
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from opsdesk.demo.conversations import (
    MESSAGE_COLUMNS,
    TAG_COLUMNS,
    Requester,
    Rows,
    TicketPlayer,
)

# Messages from the child: a batch (marshal) or a control message (pickle), by first byte.
_BATCH, _CONTROL = b"B", b"C"
# One batch: its rows, then the next free ticket id and message id after it.
Batch = tuple[Rows, int, int]
# The tables a ChildStore holds, in the order the parent copies them, with the Rows field and
# the columns the child writes.
STORED_TABLES = (
    ("ticket_tags", "tags", TAG_COLUMNS),
    ("messages", "messages", MESSAGE_COLUMNS),
)
# Negative: KiB. The child's page cache, so its tables and index builds stay in memory.
_STORE_CACHE_KIB = -1_048_576


@dataclass(frozen=True, slots=True)
class ChildStore:
    """An SQLite file the child writes the stored tables into: its path, and the statements
    (taken from the parent's database) that create those tables and then their indexes."""

    path: str
    tables: tuple[str, ...]
    indexes: tuple[str, ...]
    page_size: int


@dataclass(slots=True)
class TicketPlan:
    generator: random.Random
    player: TicketPlayer
    # Arrival instants (epoch seconds), sorted.
    times: Sequence[int]
    requesters: Sequence[Requester]
    first_ticket_id: int
    first_message_id: int
    batch_size: int
    # Also make each ticket's keyword-search document (``Rows.documents``).
    documents: bool = False


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def generate(plan: TicketPlan) -> Iterator[Batch]:
    ticket_id, message_id = plan.first_ticket_id, plan.first_message_id
    requesters, times, play = plan.requesters, plan.times, plan.player.play
    population = len(requesters)
    rnd = plan.generator.random
    for batch_start in range(0, len(times), plan.batch_size):
        rows = Rows()
        messages, documents = rows.messages, rows.documents
        for created in times[batch_start : batch_start + plan.batch_size]:
            # Some customers write far more than others: skew the pick towards the list's head.
            requester = requesters[int(population * rnd() ** 1.6)]
            first = len(messages)
            message_id = play(ticket_id, message_id, created, requester, rows)
            if plan.documents:
                # What the search index holds for a ticket: its subject, and the text of its
                # messages in order, one per line (the rebuild's group_concat).
                documents.append(
                    (
                        ticket_id,
                        rows.tickets[-1][1],
                        "\n".join([str(message[6]) for message in messages[first:]]),
                    )
                )
            ticket_id += 1
        yield rows, ticket_id, message_id


def _write_store(store: ChildStore) -> sqlite3.Connection:
    database = sqlite3.connect(store.path, isolation_level=None)
    # A scratch file: nothing to recover if this process dies, the parent gives up the load.
    database.execute(f"PRAGMA page_size={store.page_size}")
    database.execute("PRAGMA journal_mode=OFF")
    database.execute("PRAGMA synchronous=OFF")
    database.execute(f"PRAGMA cache_size={_STORE_CACHE_KIB}")
    database.execute("BEGIN")
    for statement in store.tables:
        database.execute(statement)
    return database


def _child(plan: TicketPlan, store: ChildStore | None, sender: Connection) -> None:
    try:
        database = _write_store(store) if store is not None else None
        inserts = [
            (
                field,
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            )
            for table, field, columns in STORED_TABLES
        ]
        for rows, next_ticket_id, next_message_id in generate(plan):
            if database is not None:
                for field, statement in inserts:
                    database.executemany(statement, getattr(rows, field))
                    setattr(rows, field, [])
            # marshal: plain tuples of str/int/None, twice as fast to write as pickle.
            sender.send_bytes(
                _BATCH
                + marshal.dumps(
                    (
                        rows.tickets,
                        rows.messages,
                        rows.tags,
                        rows.created_audit,
                        rows.audit,
                        rows.message_audit,
                        rows.documents,
                        next_ticket_id,
                        next_message_id,
                    )
                )
            )
        # The generator's state first: the parent goes on while this process builds indexes.
        sender.send_bytes(_CONTROL + pickle.dumps(("done", plan.generator.getstate())))
        if database is not None:
            for statement in store.indexes if store is not None else ():
                database.execute(statement)
            database.execute("COMMIT")
            database.close()
            sender.send_bytes(_CONTROL + pickle.dumps(("stored", None)))
    except BaseException:  # reported to the parent, which raises
        sender.send_bytes(_CONTROL + pickle.dumps(("failed", traceback.format_exc())))
    finally:
        sender.close()


class ChildTickets:
    """A forked child generating the plan's batches (and, with a store, writing part of them).

    Use as a context manager: leaving it stops the child if it still runs.
    """

    def __init__(self, plan: TicketPlan, store: ChildStore | None = None) -> None:
        self.plan = plan
        self.store = store
        self._receiver: Connection | None = None
        self._process: BaseProcess | None = None

    def __enter__(self) -> ChildTickets:
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        # Forked: the child starts with the plan (a million arrival times, the requesters) in
        # memory. It never touches the parent's database connection.
        process = context.Process(
            target=_child, args=(self.plan, self.store, sender), name="opsdesk-seed-tickets", daemon=True
        )
        process.start()
        sender.close()
        self._receiver, self._process = receiver, process
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
        if self._receiver is None or self._process is None:
            raise RuntimeError("use ChildTickets in a with block")
        try:
            return self._receiver.recv_bytes()
        except EOFError:
            self._process.join()
            raise RuntimeError(
                f"the ticket generator process ended early (exit code {self._process.exitcode})"
            ) from None

    def _control(self, message: bytes, expected: str) -> Any:
        kind, payload = pickle.loads(memoryview(message)[1:])  # noqa: S301 - from our own forked child
        if kind != expected:
            raise RuntimeError(f"the ticket generator process failed:\n{payload}")
        return payload

    def batches(self) -> Iterator[Batch]:
        """The plan's batches in order; leaves ``plan.generator`` where the in-process loop
        would. With a store, the stored tables' rows are not in the batches: see :meth:`stored`."""
        while True:
            message = self._receive()
            if message[:1] != _BATCH:
                self.plan.generator.setstate(self._control(message, "done"))
                return
            tickets, messages, tags, created, audit, message_audit, documents, next_ticket, next_message = (
                marshal.loads(memoryview(message)[1:])  # noqa: S302 - from our own forked child
            )
            rows = Rows(tickets, messages, tags, created, audit, message_audit, documents)
            yield rows, next_ticket, next_message

    def stored(self) -> None:
        """Wait until the child has written and indexed the store (after :meth:`batches`)."""
        self._control(self._receive(), "stored")


def ticket_batches(plan: TicketPlan, *, in_child: bool) -> Iterator[Batch]:
    """The plan's batches in order; with ``in_child``, generated by a forked child process (where
    the platform can fork). Leaves ``plan.generator`` where the in-process loop would."""
    if not in_child or not can_fork():
        yield from generate(plan)
        return
    with ChildTickets(plan) as child:
        yield from child.batches()
