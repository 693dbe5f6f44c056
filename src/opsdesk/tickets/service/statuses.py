"""Admins' own ticket statuses, each inside one of the six categories.

Rules and metrics use the category; people see the name. A status is retired, never deleted, so
tickets that carry it keep their history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem, NotFoundError, ValidationFailedError
from opsdesk.tickets.enums import StatusCategory
from opsdesk.tickets.models import TicketStatusDefinition

STATUS_FIELDS = frozenset({"name", "category", "description", "is_active", "position"})


def list_statuses(
    session: Session, actor: Actor, *, include_inactive: bool = False
) -> list[TicketStatusDefinition]:
    require(actor, Permission.TICKET_READ)
    statement = select(TicketStatusDefinition).order_by(
        TicketStatusDefinition.position, TicketStatusDefinition.id
    )
    if not include_inactive:
        statement = statement.where(TicketStatusDefinition.is_active.is_(True))
    return list(session.scalars(statement))


def access_status(session: Session, actor: Actor, status_id: int) -> TicketStatusDefinition:
    require(actor, Permission.TICKET_READ)
    status = session.get(TicketStatusDefinition, status_id)
    if status is None:
        raise NotFoundError(f"status {status_id} not found")
    return status


def _validate(
    session: Session, values: Mapping[str, Any], status: TicketStatusDefinition | None
) -> dict[str, Any]:
    problems: list[FieldProblem] = []
    for key in sorted(set(values) - STATUS_FIELDS):
        problems.append(FieldProblem((key,), "not a field of a status", "unknown_field"))
    cleaned: dict[str, Any] = {}
    if "name" in values or status is None:
        name = str(values.get("name") or "").strip()
        categories = {member.value for member in StatusCategory}
        if not name or len(name) > 80:
            problems.append(FieldProblem(("name",), "must be 1 to 80 characters"))
        elif name in categories:
            problems.append(FieldProblem(("name",), "must differ from the category names"))
        else:
            clash = session.scalar(
                select(TicketStatusDefinition.id).where(TicketStatusDefinition.name == name)
            )
            if clash is not None and (status is None or clash != status.id):
                problems.append(FieldProblem(("name",), f"a status named {name} exists"))
        cleaned["name"] = name
    if "category" in values or status is None:
        category = values.get("category")
        if category not in {member.value for member in StatusCategory}:
            problems.append(
                FieldProblem(("category",), "must be one of " + ", ".join(m.value for m in StatusCategory))
            )
        cleaned["category"] = category
    if "description" in values:
        cleaned["description"] = str(values["description"] or "")
    if "is_active" in values:
        cleaned["is_active"] = bool(values["is_active"])
    if "position" in values:
        cleaned["position"] = int(values["position"] or 0)
    if problems:
        raise ValidationFailedError("the status is not valid", fields=problems)
    return cleaned


def create_status(session: Session, actor: Actor, values: Mapping[str, Any]) -> TicketStatusDefinition:
    require(actor, Permission.STATUS_MANAGE)
    status = TicketStatusDefinition(**_validate(session, values, None))
    session.add(status)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="ticket_status",
        entity_id=status.id,
        action="created",
        new={"name": status.name, "category": status.category},
    )
    return status


def update_status(
    session: Session, actor: Actor, status: TicketStatusDefinition, values: Mapping[str, Any]
) -> TicketStatusDefinition:
    """Rename, describe, reorder or retire a status. Its category is fixed once tickets can carry
    it, because rules and metrics already counted those tickets in that category."""
    require(actor, Permission.STATUS_MANAGE)
    if "category" in values and values["category"] != status.category:
        raise ValidationFailedError(
            "the status is not valid",
            fields=[FieldProblem(("category",), "cannot change; create a status in the other category")],
        )
    cleaned = _validate(session, values, status)
    changes: dict[str, tuple[Any, Any]] = {}
    for key, value in cleaned.items():
        if getattr(status, key) != value:
            changes[key] = (getattr(status, key), value)
            setattr(status, key, value)
    if changes:
        session.flush()
        audit.record_changes(
            session, actor, entity_type="ticket_status", entity_id=status.id, changes=changes
        )
    return status


def retire_status(session: Session, actor: Actor, status: TicketStatusDefinition) -> None:
    update_status(session, actor, status, {"is_active": False})
