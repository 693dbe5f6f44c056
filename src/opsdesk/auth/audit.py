"""Writing the audit trail: one row per changed field, with the actor and the channel."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

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
) -> AuditEvent:
    event = AuditEvent(
        ticket_id=ticket_id,
        entity_type=entity_type,
        entity_id=entity_id,
        action=action,
        field=field,
        old_value=_jsonable(old),
        new_value=_jsonable(new),
        actor_kind=actor.kind.value,
        actor_id=actor.actor_id,
        actor_name=actor.name,
        via=actor.via,
        reason=reason,
        created_at=clock.now(),
    )
    session.add(event)
    return event


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
