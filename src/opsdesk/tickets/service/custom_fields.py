"""Validating ticket custom field values against the admins' definitions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.errors import FieldProblem, ValidationFailedError
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
