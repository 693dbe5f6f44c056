"""Writing the audit trail: one row per changed field, with the actor and the channel."""

from __future__ import annotations

from collections.abc import Mapping
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
    """
    session.execute(
        _INSERT_AUDIT,
        {
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
        },
    )


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
