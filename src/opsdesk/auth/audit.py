"""Writing the audit trail: one row per changed field, with the actor and the channel."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import AuditEvent


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return value


AUDIT_TABLE: Table = AuditEvent.__table__  # type: ignore[assignment]
# Compiled once; a plain Core insert of the table (not of the mapped class) so writing an audit
# row neither builds an ORM object nor triggers an autoflush of everything pending.
_INSERT_AUDIT = insert(AUDIT_TABLE)
# session.info key: the rows recorded inside a batched() block, not written yet.
_PENDING_KEY = "opsdesk_audit_pending"


@contextlib.contextmanager
def batched(session: Session) -> Iterator[None]:
    """Write the audit rows recorded inside the block together at its end, in the order they
    were recorded: one statement (one round trip on PostgreSQL) instead of one each.

    For a hot path that records several rows and reads none of them back before it ends
    (opening a ticket records its new requester and the ticket). If the block raises, its rows
    are dropped with the changes they describe, which the caller rolls back. Nested blocks
    write at the end of the outermost one."""
    if _PENDING_KEY in session.info:
        yield
        return
    pending: list[dict[str, Any]] = []
    session.info[_PENDING_KEY] = pending
    try:
        yield
    finally:
        del session.info[_PENDING_KEY]
    if pending:
        session.execute(_INSERT_AUDIT, pending)


def record(
    session: Session,
    actor: Actor,
    *,
    entity_type: str,
    entity_id: int | None,
    action: str,
    field: str | None = None,
    old: Any = None,
    new: Any = None,
    ticket_id: int | None = None,
    reason: str | None = None,
) -> None:
    """Write one audit row now, in the caller's transaction.

    The hot paths (every ticket, every message) write several of these: a direct insert costs a
    fraction of an ORM object flushed by the unit of work, and keeps the rows in call order.
    Inside :func:`batched`, the row is written at the block's end instead.
    """
    row = {
        "ticket_id": ticket_id,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "action": action,
        "field": field,
        "old_value": _jsonable(old),
        "new_value": _jsonable(new),
        "actor_kind": actor.kind.value,
        "actor_id": actor.actor_id,
        "actor_name": actor.name,
        "via": actor.via,
        "reason": reason,
        "created_at": clock.now(),
    }
    pending: list[dict[str, Any]] | None = session.info.get(_PENDING_KEY)
    if pending is not None:
        pending.append(row)
    else:
        session.execute(_INSERT_AUDIT, row)


def record_changes(
    session: Session,
    actor: Actor,
    *,
    entity_type: str,
    entity_id: int,
    changes: Mapping[str, tuple[Any, Any]],
    ticket_id: int | None = None,
    reason: str | None = None,
) -> None:
    """One ``updated`` row per field whose value changed."""
    for field, (old, new) in changes.items():
        record(
            session,
            actor,
            entity_type=entity_type,
            entity_id=entity_id,
            action="updated",
            field=field,
            old=old,
            new=new,
            ticket_id=ticket_id,
            reason=reason,
        )
