"""Validating ticket custom field values against the admins' definitions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem, NotFoundError, ValidationFailedError
from opsdesk.tickets.enums import FieldType
from opsdesk.tickets.models import CustomFieldDefinition


def active_definitions(session: Session) -> dict[str, CustomFieldDefinition]:
    rows = session.scalars(select(CustomFieldDefinition).where(CustomFieldDefinition.is_active.is_(True)))
    return {row.key: row for row in rows}


def _coerce(definition: CustomFieldDefinition, value: Any) -> Any:
    """The stored form of a value, or ValueError with a readable reason."""
    if value is None:
        return None
    kind = FieldType(definition.field_type)
    if kind is FieldType.TEXT:
        if not isinstance(value, str):
            raise ValueError("must be text")
        if len(value) > 10_000:
            raise ValueError("must be at most 10000 characters")
        return value
    if kind is FieldType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        return value
    if kind is FieldType.DATE:
        if not isinstance(value, str):
            raise ValueError("must be a date as YYYY-MM-DD")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError as error:
            raise ValueError("must be a date as YYYY-MM-DD") from error
    if kind is FieldType.DROPDOWN:
        if value not in definition.options:
            raise ValueError(f"must be one of {', '.join(definition.options)}")
        return value
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def validate_custom_fields(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    """Normalized values; every unknown key or bad value is listed in one error."""
    if not values:
        return {}
    definitions = active_definitions(session)
    problems: list[FieldProblem] = []
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            problems.append(FieldProblem(("custom_fields", key), "unknown custom field", "unknown_field"))
            continue
        try:
            cleaned[key] = _coerce(definition, value)
        except ValueError as error:
            problems.append(FieldProblem(("custom_fields", key), str(error)))
    if problems:
        raise ValidationFailedError("custom fields are not valid", fields=problems)
    return cleaned


def missing_required(session: Session, values: Mapping[str, Any]) -> list[str]:
    """Keys of required fields with no value: a ticket cannot be solved while any is missing."""
    return [
        key
        for key, definition in active_definitions(session).items()
        if definition.is_required and values.get(key) in (None, "")
    ]


# ---------------------------------------------------------------- definitions (admins)

DEFINITION_FIELDS = frozenset(
    {"key", "label", "field_type", "options", "is_required", "is_active", "position"}
)
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def list_definitions(
    session: Session, actor: Actor, *, include_inactive: bool = False
) -> list[CustomFieldDefinition]:
    require(actor, Permission.TICKET_READ)
    statement = select(CustomFieldDefinition).order_by(
        CustomFieldDefinition.position, CustomFieldDefinition.id
    )
    if not include_inactive:
        statement = statement.where(CustomFieldDefinition.is_active.is_(True))
    return list(session.scalars(statement))


def access_definition(session: Session, actor: Actor, definition_id: int) -> CustomFieldDefinition:
    require(actor, Permission.TICKET_READ)
    definition = session.get(CustomFieldDefinition, definition_id)
    if definition is None:
        raise NotFoundError(f"custom field {definition_id} not found")
    return definition


def _validate_definition(
    session: Session, values: Mapping[str, Any], definition: CustomFieldDefinition | None
) -> dict[str, Any]:
    problems: list[FieldProblem] = []
    for key in sorted(set(values) - DEFINITION_FIELDS):
        problems.append(FieldProblem((key,), "not a field of a custom field", "unknown_field"))
    cleaned: dict[str, Any] = {}
    if definition is not None:
        for fixed in ("key", "field_type"):
            if fixed in values and values[fixed] != getattr(definition, fixed):
                problems.append(FieldProblem((fixed,), "cannot change once created; add a new field"))
    else:
        key = str(values.get("key") or "")
        if not _KEY.match(key):
            problems.append(
                FieldProblem(("key",), "must be lower-case letters, digits and _ (starting with a letter)")
            )
        elif session.scalar(select(CustomFieldDefinition.id).where(CustomFieldDefinition.key == key)):
            problems.append(FieldProblem(("key",), f"a field with key {key} exists"))
        cleaned["key"] = key
        field_type = values.get("field_type")
        if field_type not in {member.value for member in FieldType}:
            problems.append(
                FieldProblem(("field_type",), "must be one of " + ", ".join(m.value for m in FieldType))
            )
        cleaned["field_type"] = field_type
    if "label" in values or definition is None:
        label = str(values.get("label") or "").strip()
        if not label or len(label) > 120:
            problems.append(FieldProblem(("label",), "must be 1 to 120 characters"))
        cleaned["label"] = label
    field_type = cleaned.get("field_type") or (definition.field_type if definition else None)
    if "options" in values or (definition is None and field_type == FieldType.DROPDOWN.value):
        options = [str(option).strip() for option in values.get("options") or [] if str(option).strip()]
        if field_type == FieldType.DROPDOWN.value and not options:
            problems.append(FieldProblem(("options",), "a dropdown needs at least one option"))
        if len(set(options)) != len(options):
            problems.append(FieldProblem(("options",), "options must be distinct"))
        cleaned["options"] = options
    for flag in ("is_required", "is_active"):
        if flag in values:
            cleaned[flag] = bool(values[flag])
    if "position" in values:
        cleaned["position"] = int(values["position"] or 0)
    if problems:
        raise ValidationFailedError("the custom field is not valid", fields=problems)
    return cleaned


def create_definition(session: Session, actor: Actor, values: Mapping[str, Any]) -> CustomFieldDefinition:
    require(actor, Permission.FIELD_MANAGE)
    cleaned = _validate_definition(session, values, None)
    definition = CustomFieldDefinition(**cleaned)
    session.add(definition)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="custom_field",
        entity_id=definition.id,
        action="created",
        new={"key": definition.key, "field_type": definition.field_type},
    )
    return definition


def update_definition(
    session: Session, actor: Actor, definition: CustomFieldDefinition, values: Mapping[str, Any]
) -> CustomFieldDefinition:
    require(actor, Permission.FIELD_MANAGE)
    cleaned = _validate_definition(session, values, definition)
    changes: dict[str, tuple[Any, Any]] = {}
    for key, value in cleaned.items():
        if getattr(definition, key) != value:
            changes[key] = (getattr(definition, key), value)
            setattr(definition, key, value)
    if changes:
        session.flush()
        audit.record_changes(
            session, actor, entity_type="custom_field", entity_id=definition.id, changes=changes
        )
    return definition


def deactivate_definition(session: Session, actor: Actor, definition: CustomFieldDefinition) -> None:
    """Retire a field: tickets keep their values, new values are refused."""
    update_definition(session, actor, definition, {"is_active": False})
