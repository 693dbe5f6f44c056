"""Bulk actions on a ticket list: the form's choices, reading the posted form, and the result
message (how many changed, which were refused and why).

The change itself is :func:`opsdesk.tickets.service.bulk.bulk_update` (per ticket: a refused
ticket is reported and the others are kept). A form that is wrong as a whole (nothing selected,
nothing to change, a value that does not exist) changes nothing and is shown again as typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from opsdesk.auth import service as auth_service
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission
from opsdesk.errors import DomainError, FieldProblem, ValidationFailedError
from opsdesk.tickets.enums import Priority
from opsdesk.tickets.pages import display
from opsdesk.tickets.service import directory, statuses
from opsdesk.tickets.service.bulk import BulkResult

SETTABLE_STATUSES = ("open", "pending", "on_hold", "solved")
FIELD_NAMES = {
    "ids": "Tickets",
    "changes": "Changes",
    "changes.status": "Status",
    "changes.priority": "Priority",
    "changes.group_id": "Group",
    "changes.assignee_id": "Assignee",
    "changes.add_tags": "Add tags",
    "changes.remove_tags": "Remove tags",
}


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str
    selected: bool = False


@dataclass(frozen=True, slots=True)
class BulkForm:
    """The bulk bar above a ticket list: what can be set, and what was typed last time."""

    statuses: list[Choice]
    priorities: list[Choice]
    groups: list[Choice]
    assignees: list[Choice]
    add_tags: str
    remove_tags: str


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """What the last bulk action did, for the message above the list."""

    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)
    selected_ids: frozenset[int] = frozenset()


def may_bulk(actor: Actor) -> bool:
    return has_permission(actor, Permission.TICKET_BULK)


def _choices(keep: str, options: list[tuple[str, str]], typed: str) -> list[Choice]:
    return [Choice("", keep, typed == "")] + [
        Choice(value, label, value == typed) for value, label in options
    ]


def bulk_form(session: Session, actor: Actor, typed: FormData | None = None) -> BulkForm:
    def value(name: str) -> str:
        return str(typed.get(name) or "") if typed is not None else ""

    custom = [
        (status.name, f"{status.name} ({display.status_label(status.category)})")
        for status in statuses.list_statuses(session, actor)
    ]
    return BulkForm(
        statuses=_choices(
            "Keep status",
            [(name, display.status_label(name)) for name in SETTABLE_STATUSES] + custom,
            value("status"),
        ),
        priorities=_choices(
            "Keep priority",
            [(member.value, display.PRIORITY_LABELS[member.value]) for member in Priority],
            value("priority"),
        ),
        groups=_choices(
            "Keep group",
            [("none", "No group")]
            + [(str(group.id), group.name) for group in auth_service.list_groups(session, actor)],
            value("group_id"),
        ),
        assignees=_choices(
            "Keep assignee",
            [("none", "Unassigned")]
            + [
                (str(user.id), f"{user.name} ({user.role})")
                for user in directory.assignable_staff(session, actor)
            ],
            value("assignee_id"),
        ),
        add_tags=value("add_tags"),
        remove_tags=value("remove_tags"),
    )


def _tags(raw: str) -> list[str]:
    return [part for part in raw.replace(",", " ").split() if part]


def _reference(raw: str, name: str, problems: list[FieldProblem]) -> int | None:
    if raw == "none":
        return None
    if raw.isdigit():
        return int(raw)
    problems.append(FieldProblem(("changes", name), "choose from the list"))
    return None


def read_form(form: FormData) -> tuple[list[int], dict[str, Any]]:
    """The selected ticket ids and the changes the form asks for (blank means keep)."""
    problems: list[FieldProblem] = []
    ids: list[int] = []
    for raw in form.getlist("ids"):
        if str(raw).isdigit():
            ids.append(int(str(raw)))
        else:
            problems.append(FieldProblem(("ids",), "not a ticket number"))
    values: dict[str, Any] = {}
    for name in ("status", "priority"):
        chosen = str(form.get(name) or "").strip()
        if chosen:
            values[name] = chosen
    for name in ("group_id", "assignee_id"):
        chosen = str(form.get(name) or "").strip()
        if chosen:
            values[name] = _reference(chosen, name, problems)
    for name in ("add_tags", "remove_tags"):
        tags = _tags(str(form.get(name) or ""))
        if tags:
            values[name] = tags
    if not ids:
        problems.append(FieldProblem(("ids",), "select at least one ticket"))
    if not values:
        problems.append(FieldProblem(("changes",), "choose at least one change"))
    if problems:
        raise ValidationFailedError("the bulk change is not valid", fields=problems)
    return ids, values


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def success(result: BulkResult) -> BulkOutcome:
    parts = [f"{_plural(len(result.updated_ids), 'ticket')} changed"]
    if result.unchanged_ids:
        parts.append(f"{_plural(len(result.unchanged_ids), 'ticket')} already as asked")
    if result.refused:
        parts.append(f"{_plural(len(result.refused), 'ticket')} refused")
    details = [f"#{item.ticket_id}: {item.detail}" for item in result.refused]
    return BulkOutcome(ok=not result.refused, summary="; ".join(parts) + ".", details=details)


def refusal(error: DomainError, selected: list[int]) -> BulkOutcome:
    details = [
        f"{FIELD_NAMES.get('.'.join(str(part) for part in item.location), item.location[-1])}: {item.message}"
        for item in error.fields
    ]
    return BulkOutcome(
        ok=False,
        summary=f"Nothing was changed: {error.detail}.",
        details=details,
        selected_ids=frozenset(selected),
    )
