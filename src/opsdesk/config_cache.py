"""Configuration that every new ticket reads, cached per process and never stale.

Each new ticket reads the team's configuration several times (routing rules, SLA policies,
triggers, webhook subscriptions, triage settings, running experiments, the email or chat brand).
It changes a few times a day; tickets arrive many times a second. So hot paths keep an immutable
snapshot of what they read, keyed by the database's *configuration generation*:

- ``config_generation`` is a one-row table. Database triggers on every configuration table
  (migrations ``core_02``, and ``core_03`` for the brands) set its ``value`` to a fresh random
  number in the same transaction as any insert, update or delete, so no service has to remember
  to invalidate anything, and every process (Uvicorn workers, ``opsdesk worker``) sees the change
  as soon as it commits. Random, not a counter: a change that rolls back leaves entries keyed by a
  value that is never current again (a counter would reach that number again with a different
  change).
- Its ``epoch`` is random per database, so two databases in one process (tests, the benches)
  never share entries.
- The generation is read once per transaction (a primary-key read) and read again after any
  statement that writes a configuration table, so a transaction sees its own changes.
- Counters that hot paths update on configuration rows (a trigger's fire count, round-robin's
  last agent) are left out of the update triggers: they are not configuration.

Loaders must return immutable values (tuples, frozen dataclasses), never ORM objects: the value
outlives the session that loaded it and is shared between threads.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

T = TypeVar("T")

GENERATION_TABLE = "config_generation"
# The tables whose rows are configuration (edited by admins, read by every new ticket).
CONFIGURATION_TABLES = (
    "automation_rules",
    "business_calendars",
    "chat_brands",
    "custom_field_definitions",
    "email_brands",
    "escalation_rules",
    "experiments",
    "group_assignment_settings",
    "groups",
    "routing_rules",
    "sla_policies",
    "ticket_statuses",
    "triage_categories",
    "triage_keyword_rules",
    "triage_models",
    "triage_settings",
    "webhook_subscriptions",
)

_MEMO_KEY = "opsdesk_config_generation"
# A write names its table in its first words: INSERT INTO t, UPDATE t, DELETE FROM t (and an
# SQLite trigger writes config_generation only from such a statement).
# (Not api_tokens and users, whose changes bump the generation too, migration core_05, for the
# tokens kept by :func:`opsdesk.auth.service.find_token`: a transaction reads its token before
# it changes anything.)
_WRITES_CONFIGURATION = re.compile(r"\b(" + "|".join(CONFIGURATION_TABLES) + r")\b")
_READ_GENERATION = f"SELECT epoch, value FROM {GENERATION_TABLE} WHERE id = 1"

_entries: dict[str, tuple[tuple[str, int], Any]] = {}
_lock = threading.Lock()


def generation(session: Session) -> tuple[str, int]:
    """The (epoch, value) of the session's database, read once per transaction."""
    if session.autoflush:
        # What a query would do first: configuration rows added but not yet flushed count.
        session.flush()
    return generation_on(session.connection())


def generation_on(connection: Connection) -> tuple[str, int]:
    """The (epoch, value) of the connection's database, read once per transaction."""
    memo = connection.info.get(_MEMO_KEY)
    if memo is None:
        row = connection.exec_driver_sql(_READ_GENERATION).first()
        memo = (str(row[0]), int(row[1])) if row is not None else ("", -1)
        connection.info[_MEMO_KEY] = memo
    return cast(tuple[str, int], memo)


def cached(session: Session, key: str, load: Callable[[Session], T]) -> T:
    """``load(session)``, or the value it gave at the current configuration generation."""
    current = generation(session)
    entry = _entries.get(key)
    if entry is not None and entry[0] == current:
        return cast(T, entry[1])
    value = load(session)
    # A different database of the same process may have put its own entry meanwhile; the last
    # writer wins, and the other database reloads once.
    with _lock:
        _entries[key] = (current, value)
    return value


def clear() -> None:
    """Forget every entry (tests that rewrite configuration tables by hand)."""
    with _lock:
        _entries.clear()


def watch(engine: Engine) -> None:
    """Forget a connection's generation at each transaction's start and after each statement that
    writes a configuration table.

    Called once per engine by :func:`opsdesk.db.make_engine`."""

    def _forget(connection: Any, *_arguments: Any) -> None:
        # A connection invalidated by a disconnect gets a new DBAPI connection with an empty
        # info; asking for its info before the rollback would raise instead of rolling back.
        if not connection.invalidated:
            connection.info.pop(_MEMO_KEY, None)

    # A rolled-back savepoint may have held a configuration change: read the generation again.
    # A savepoint starts a unit of work as a transaction does (a request, in tests that run each
    # request in a savepoint of theirs): it reads the generation afresh too.
    for name in ("begin", "savepoint", "rollback", "rollback_savepoint", "commit"):
        event.listen(engine, name, _forget)

    @event.listens_for(engine, "after_cursor_execute")
    def _after_execute(
        connection: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, _many: bool
    ) -> None:
        if _MEMO_KEY not in connection.info:
            return
        head = statement.lstrip()[:80]
        if head[:6].upper() != "SELECT" and _WRITES_CONFIGURATION.search(head):
            del connection.info[_MEMO_KEY]
