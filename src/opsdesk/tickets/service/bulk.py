"""Changing many tickets at once, ticket by ticket (like Zendesk's ``update_many`` job).

The request as a whole is checked first: the actor must hold ``ticket.bulk``, the ids and the
changes must be well formed, and every value that does not depend on a ticket (a priority, a
status name, a group, an assignee, tags) must be valid. A request refused there changes nothing.

Then each ticket is loaded through :func:`access_ticket` (a ticket the actor may not see is
"not found", exactly like a missing one) and changed through :func:`update_ticket` inside its own
savepoint, so it obeys the rules of a single change and writes the same audit rows (one per
changed field). A ticket refused on its own (closed, required fields missing before solving, an
assignee contractor outside the ticket's group, not found) is rolled back alone and reported with
the reason; the others are kept. ``atomic=True`` asks for all or nothing instead: the first
refusal raises :class:`BulkRefusedError` listing every refused ticket and the caller's
transaction rolls back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.enums import Role
from opsdesk.auth.models import Group, User
from opsdesk.auth.permissions import Permission, is_group_scoped, require
from opsdesk.errors import ConflictError, DomainError, FieldProblem, ValidationFailedError
from opsdesk.tickets.enums import Priority, TicketType
from opsdesk.tickets.models import Ticket
from opsdesk.tickets.service.access import access_ticket
from opsdesk.tickets.service.lifecycle import UPDATABLE_FIELDS, normalize_tags, resolve_status, update_ticket

MAX_BULK = 100


class BulkRefusedError(ConflictError):
    code = "bulk_refused"
    title = "Bulk change refused"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one ticket of a bulk change was not changed."""

    ticket_id: int
    code: str
    detail: str
    status: int
    fields: list[FieldProblem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BulkResult:
    updated_ids: list[int]
    unchanged_ids: list[int]
    refused: list[Refusal] = field(default_factory=list)


def _check_request(
    session: Session, actor: Actor, ids: Sequence[int], values: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything that does not depend on a ticket; returns the values with the assignee loaded
    once. Refuses the whole request with a field list."""
    problems: list[FieldProblem] = []
    if not ids:
        problems.append(FieldProblem(("ids",), "give at least one ticket id"))
    if len(ids) > MAX_BULK:
        problems.append(FieldProblem(("ids",), f"at most {MAX_BULK} tickets at once"))
    if not values:
        problems.append(FieldProblem(("changes",), "give at least one change"))
    for name in sorted(set(values) - UPDATABLE_FIELDS):
        problems.append(FieldProblem(("changes", name), "not a field that can be changed"))
    for name, allowed in (("priority", Priority), ("type", TicketType)):
        if name in values and str(values[name]) not in {member.value for member in allowed}:
            choices = ", ".join(member.value for member in allowed)
            problems.append(FieldProblem(("changes", name), f"must be one of {choices}"))
    if "status" in values:
        try:
            resolve_status(session, str(values["status"]))
        except DomainError as error:
            problems.extend(
                FieldProblem(("changes", *item.location), item.message, item.code) for item in error.fields
            )
    for name in ("tags", "add_tags", "remove_tags"):
        if name in values:
            try:
                normalize_tags(list(values[name] or []))
            except DomainError as error:
                problems.append(FieldProblem(("changes", name), error.detail))
    group_id = values.get("group_id")
    if group_id is not None:
        if session.get(Group, group_id) is None:
            problems.append(FieldProblem(("changes", "group_id"), f"group {group_id} does not exist"))
        elif is_group_scoped(actor) and actor.user is not None and group_id not in actor.user.group_ids:
            problems.append(FieldProblem(("changes", "group_id"), "you may only use your own groups"))
    assignee_id = values.get("assignee_id")
    if assignee_id is not None:
        assignee = session.get(User, assignee_id)
        if assignee is None or not assignee.is_active:
            problems.append(
                FieldProblem(("changes", "assignee_id"), f"user {assignee_id} is not an active staff member")
            )
        elif assignee.role == Role.VIEWER.value:
            problems.append(FieldProblem(("changes", "assignee_id"), "viewers cannot be assigned tickets"))
    if problems:
        raise ValidationFailedError("the bulk change is not valid", fields=problems)
    return dict(values)


def _contractor_scope(session: Session, ticket: Ticket, values: Mapping[str, Any]) -> Refusal | None:
    """A contractor may only hold tickets of their own groups (the group after the change)."""
    assignee_id = values.get("assignee_id", ticket.assignee_id if "group_id" in values else None)
    if assignee_id is None:
        return None
    assignee = session.get(User, assignee_id)
    if assignee is None or assignee.role != Role.CONTRACTOR.value:
        return None
    group_id = values.get("group_id", ticket.group_id)
    if group_id in assignee.group_ids:
        return None
    return Refusal(
        ticket_id=ticket.id,
        code="contractor_out_of_scope",
        detail=f"{assignee.name} is a contractor and can only take tickets of their groups",
        status=422,
        fields=[FieldProblem(("assignee_id",), "a contractor can only take tickets of their groups")],
    )


def _refusal(ticket_id: int, error: DomainError) -> Refusal:
    return Refusal(
        ticket_id=ticket_id,
        code=error.code,
        detail=error.detail,
        status=error.status,
        fields=list(error.fields),
    )


def bulk_update(
    session: Session,
    actor: Actor,
    ticket_ids: Sequence[int],
    values: Mapping[str, Any],
    *,
    atomic: bool = False,
) -> BulkResult:
    """Apply the same change to each ticket; see the module docstring for what is refused where."""
    require(actor, Permission.TICKET_BULK)
    ids = list(dict.fromkeys(ticket_ids))
    checked = _check_request(session, actor, ids, values)
    updated: list[int] = []
    unchanged: list[int] = []
    refused: list[Refusal] = []
    for ticket_id in ids:
        try:
            with session.begin_nested():
                ticket = access_ticket(session, actor, ticket_id, for_update=True)
                out_of_scope = _contractor_scope(session, ticket, checked)
                if out_of_scope is not None:
                    refused.append(out_of_scope)
                    continue
                changes = update_ticket(session, actor, ticket, checked)
        except DomainError as error:
            refused.append(_refusal(ticket_id, error))
            continue
        (updated if changes else unchanged).append(ticket_id)
    if atomic and refused:
        raise BulkRefusedError(
            f"{len(refused)} of {len(ids)} tickets were refused; nothing was changed",
            fields=[FieldProblem(("tickets", item.ticket_id), item.detail, item.code) for item in refused],
        )
    return BulkResult(updated_ids=updated, unchanged_ids=unchanged, refused=refused)
