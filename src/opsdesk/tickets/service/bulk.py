"""Changing many tickets at once: all or nothing.

Every ticket is loaded through :func:`access_ticket` (a ticket the actor may not see is
not-found) and changed through :func:`update_ticket`, so bulk changes obey exactly the rules and
write exactly the audit trail of single changes. The first refusal aborts the whole batch; the
caller's transaction rolls back, so nothing changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import DomainError, FieldProblem, ValidationFailedError
from opsdesk.tickets.service.access import access_ticket
from opsdesk.tickets.service.lifecycle import update_ticket

MAX_BULK = 100


@dataclass(frozen=True, slots=True)
class BulkResult:
    updated_ids: list[int]
    unchanged_ids: list[int]


def bulk_update(
    session: Session, actor: Actor, ticket_ids: Sequence[int], values: Mapping[str, Any]
) -> BulkResult:
    require(actor, Permission.TICKET_BULK)
    ids = list(dict.fromkeys(ticket_ids))
    problems: list[FieldProblem] = []
    if not ids:
        problems.append(FieldProblem(("ids",), "give at least one ticket id"))
    if len(ids) > MAX_BULK:
        problems.append(FieldProblem(("ids",), f"at most {MAX_BULK} tickets at once"))
    if not values:
        problems.append(FieldProblem(("changes",), "give at least one change"))
    if problems:
        raise ValidationFailedError("the bulk change is not valid", fields=problems)
    updated: list[int] = []
    unchanged: list[int] = []
    for ticket_id in ids:
        ticket = access_ticket(session, actor, ticket_id, for_update=True)
        try:
            changes = update_ticket(session, actor, ticket, values)
        except DomainError as error:
            error.detail = f"ticket {ticket_id}: {error.detail}"
            error.fields = [
                FieldProblem(("tickets", ticket_id, *problem.location), problem.message, problem.code)
                for problem in error.fields
            ]
            raise
        (updated if changes else unchanged).append(ticket_id)
    return BulkResult(updated_ids=updated, unchanged_ids=unchanged)
