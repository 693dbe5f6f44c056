"""PostgreSQL: the audit trail loaded on a second connection while the first loads the rest.

One PostgreSQL backend runs one statement on one core, and the audit trail (nine rows per
ticket) is the largest table of a seed. It has no foreign keys and nothing else in the seed reads
it, so a second connection expands it (:mod:`opsdesk.demo.expansion`, from temporary source
tables of its own) at the same time, on the other core; its indexes stay in place (its keys
arrive in order), so the first connection takes no lock that would make either wait.

The second transaction commits right after the first one (:func:`opsdesk.demo.bulk.load_transaction`
does both) and rolls back with it. Between the two commits the tickets exist without their trail;
a process killed exactly there leaves the trail out (PostgreSQL has no two-phase commit without
server settings the project does not ask for).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine

from opsdesk.demo import expansion
from opsdesk.demo.bulk_rows import insert_rows
from opsdesk.demo.conversations import AUDIT_COLUMNS


class AuditSideLoad:
    """Expand the audit trail on a connection of its own, in a thread: :meth:`start`, then
    :meth:`join` (raises what the load failed with), then :meth:`commit` or :meth:`rollback`."""

    def __init__(
        self,
        engine: Engine,
        sources: dict[str, Iterable[Sequence[object]]],
        solo_audit: Sequence[Sequence[object]],
    ) -> None:
        self.engine = engine
        self.sources = expansion.sources_for(sources, ("audit_events",))
        self.solo_audit = solo_audit
        self._connection: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        self._connection = self.engine.raw_connection()
        self._thread = threading.Thread(target=self._load, name="opsdesk-seed-audit", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        try:
            raw = self._connection.driver_connection
            with raw.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
                cursor.execute("SET LOCAL temp_buffers = '512MB'")
                cursor.execute("SET LOCAL work_mem = '256MB'")
            expansion.write_sources(raw, "postgresql", self.sources, temporary=True)
            with raw.cursor() as cursor:
                cursor.execute(expansion.expansion_statements("postgresql")["audit_events"])
            insert_rows(raw, "postgresql", "audit_events", AUDIT_COLUMNS, self.solo_audit)
            with raw.cursor() as cursor:
                for statement in expansion.drop_statements():
                    cursor.execute(statement)
                # Planner statistics, from the rows only this transaction sees yet.
                cursor.execute("ANALYZE audit_events")
        except BaseException as error:  # handed to join()
            self._error = error

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"the seed's audit trail load failed: {self._error}") from self._error

    def commit(self) -> None:
        self._finish(commit=True)

    def rollback(self) -> None:
        self._finish(commit=False)

    def _finish(self, *, commit: bool) -> None:
        if self._thread is not None and self._thread.is_alive():
            # Rolled back while loading (the first transaction failed): cancel the statement.
            with contextlib.suppress(Exception):
                self._connection.driver_connection.cancel()
            self._thread.join()
        if self._connection is None:
            return
        try:
            if commit:
                self._connection.commit()
            else:
                self._connection.rollback()
        finally:
            self._connection.close()
            self._connection = None
