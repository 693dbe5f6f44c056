"""The seeder's ticket loop, in this process or in a child process that works while the parent
writes.

Playing conversations is pure Python and writing them is mostly the database's work, so on a
machine with two cores a child (forked, so it starts with the plan in memory) generates batch
``n + 1`` while the parent writes batch ``n``. The child plays exactly the calls the parent would
have, in the same order, on a copy of the parent's generator, and hands the generator's final
state back: the rows, and everything the parent draws afterwards, are the same either way.

On SQLite a second child can take a share of the writing (:class:`ChildStore`): the generator
sends it the tickets, their tags and messages, which it writes into an SQLite file of its own
with the same tables and indexes, building those indexes at the end while the parent builds its
own; the parent gets only the audit rows and each ticket's search document. The parent then
copies the three tables into its database in one statement each, which SQLite does by copying
the stored records and index entries as they are (its "transfer optimization": the destination
tables are empty and have the same definition), with no per-value work and no sorting.
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
    TICKET_COLUMNS,
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
    ("tickets", "tickets", TICKET_COLUMNS),
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


def _send_control(sender: Connection, kind: str, payload: object) -> None:
    sender.send_bytes(_CONTROL + pickle.dumps((kind, payload)))


def _close(inherited: Sequence[Connection]) -> None:
    # A forked process holds a copy of every pipe end open at the fork: the ones that are not its
    # own are closed, or a reader would never see the end of a pipe whose writer has finished.
    for connection in inherited:
        connection.close()


def _child(
    plan: TicketPlan, sender: Connection, store_sender: Connection | None, inherited: Sequence[Connection]
) -> None:
    """Generate the batches; the stored tables' rows go to the store writer, the rest here."""
    _close(inherited)
    try:
        for rows, next_ticket_id, next_message_id in generate(plan):
            if store_sender is not None:
                # marshal: plain tuples of str/int/None, twice as fast to write as pickle.
                store_sender.send_bytes(
                    marshal.dumps(tuple(getattr(rows, field) for _, field, _ in STORED_TABLES))
                )
                for _, field, _ in STORED_TABLES:
                    setattr(rows, field, [])
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
        _send_control(sender, "done", plan.generator.getstate())
    except BaseException:  # reported to the parent, which raises
        _send_control(sender, "failed", traceback.format_exc())
    finally:
        sender.close()
        if store_sender is not None:
            store_sender.close()


def _store_writer(
    store: ChildStore, receiver: Connection, sender: Connection, inherited: Sequence[Connection]
) -> None:
    """Write the generator's stored-table rows into the store until it closes the pipe, then
    build the indexes. (If the generator failed, the parent gives the load up and this file.)"""
    _close(inherited)
    try:
        database = sqlite3.connect(store.path, isolation_level=None)
        # A scratch file: nothing to recover if this process dies.
        database.execute(f"PRAGMA page_size={store.page_size}")
        database.execute("PRAGMA journal_mode=OFF")
        database.execute("PRAGMA synchronous=OFF")
        database.execute(f"PRAGMA cache_size={_STORE_CACHE_KIB}")
        database.execute("BEGIN")
        for statement in store.tables:
            database.execute(statement)
        inserts = [
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
            for table, _, columns in STORED_TABLES
        ]
        while True:
            try:
                message = receiver.recv_bytes()
            except EOFError:
                break
            for statement, rows in zip(inserts, marshal.loads(message), strict=True):  # noqa: S302 - our child
                database.executemany(statement, rows)
        for statement in store.indexes:
            database.execute(statement)
        database.execute("COMMIT")
        database.close()
        _send_control(sender, "stored", None)
    except BaseException:  # reported to the parent, which raises
        _send_control(sender, "failed", traceback.format_exc())
    finally:
        sender.close()
        receiver.close()


class ChildTickets:
    """A forked child generating the plan's batches and, with a store, a second one writing the
    stored tables' rows into it.

    On two cores the three processes share the load: the generator, this process writing the
    audit trail and the search index, and the store writer; after the load, this process builds
    its tables' indexes while the store writer builds the store's. Use as a context manager:
    leaving it stops the children if they still run.
    """

    def __init__(self, plan: TicketPlan, store: ChildStore | None = None) -> None:
        self.plan = plan
        self.store = store
        self._receiver: Connection | None = None
        self._store_receiver: Connection | None = None
        self._processes: list[BaseProcess] = []

    def __enter__(self) -> ChildTickets:
        context = multiprocessing.get_context("fork")
        receiver, sender = context.Pipe(duplex=False)
        self._receiver = receiver
        # Forked: the children start with the plan (a million arrival times, the requesters) in
        # memory. They never touch this process's database connection.
        if self.store is None:
            generator = context.Process(
                target=_child, args=(self.plan, sender, None, ()), name="opsdesk-seed-tickets", daemon=True
            )
            generator.start()
            self._processes.append(generator)
            sender.close()
            return self
        rows_receiver, store_sender = context.Pipe(duplex=False)
        self._store_receiver, status_sender = context.Pipe(duplex=False)
        processes = (
            context.Process(
                target=_child,
                args=(self.plan, sender, store_sender, (rows_receiver, status_sender)),
                name="opsdesk-seed-tickets",
                daemon=True,
            ),
            context.Process(
                target=_store_writer,
                args=(self.store, rows_receiver, status_sender, (sender, store_sender)),
                name="opsdesk-seed-store",
                daemon=True,
            ),
        )
        for process in processes:
            process.start()
            self._processes.append(process)
        for connection in (sender, store_sender, rows_receiver, status_sender):
            connection.close()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for receiver in (self._receiver, self._store_receiver):
            if receiver is not None:
                receiver.close()
        for process in self._processes:
            if process.is_alive():
                process.terminate()
            process.join()

    @staticmethod
    def _receive(receiver: Connection | None, process: str) -> bytes:
        if receiver is None:
            raise RuntimeError("use ChildTickets in a with block")
        try:
            return receiver.recv_bytes()
        except EOFError:
            raise RuntimeError(f"the seed's {process} process ended early") from None

    @staticmethod
    def _control(message: bytes, expected: str) -> Any:
        kind, payload = pickle.loads(memoryview(message)[1:])  # noqa: S301 - from our own forked child
        if kind != expected:
            raise RuntimeError(f"the seed's child process failed:\n{payload}")
        return payload

    def batches(self) -> Iterator[Batch]:
        """The plan's batches in order; leaves ``plan.generator`` where the in-process loop
        would. With a store, the stored tables' rows are not in the batches: see :meth:`stored`."""
        while True:
            message = self._receive(self._receiver, "ticket generator")
            if message[:1] != _BATCH:
                self.plan.generator.setstate(self._control(message, "done"))
                return
            tickets, messages, tags, created, audit, message_audit, documents, next_ticket, next_message = (
                marshal.loads(memoryview(message)[1:])  # noqa: S302 - from our own forked child
            )
            rows = Rows(tickets, messages, tags, created, audit, message_audit, documents)
            yield rows, next_ticket, next_message

    def stored(self) -> None:
        """Wait until the store writer has written and indexed the store (after :meth:`batches`)."""
        self._control(self._receive(self._store_receiver, "store writer"), "stored")


def ticket_batches(plan: TicketPlan, *, in_child: bool) -> Iterator[Batch]:
    """The plan's batches in order; with ``in_child``, generated by a forked child process (where
    the platform can fork). Leaves ``plan.generator`` where the in-process loop would."""
    if not in_child or not can_fork():
        yield from generate(plan)
        return
    with ChildTickets(plan) as child:
        yield from child.batches()
