"""The "Apply a macro" panel on the ticket page: pick one of the macros the agent may use (shared
ones and their own), preview exactly what will be sent and changed, then apply it.

The panel holds the picker; the preview is the page ``/tickets/{id}/macros/preview`` (it renders
the macro for this ticket now, and its Apply form carries the preview's digest so that what is
applied is exactly what was shown, see :func:`opsdesk.automation.macros.apply_macro`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.models import Group, User
from opsdesk.auth.permissions import Permission, has_permission
from opsdesk.automation import macros
from opsdesk.automation.macros import MacroPreview
from opsdesk.tickets.models import Ticket
from opsdesk.web.panels import PanelPlace, TicketPanel

FIELD_LABELS = {
    "status": "Status",
    "priority": "Priority",
    "type": "Type",
    "group_id": "Group",
    "assignee_id": "Assignee",
    "category": "Category",
    "subject": "Subject",
}


def _shown(session: Session, field: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if field == "group_id":
        group = session.get(Group, value)
        return group.name if group is not None else f"group {value}"
    if field == "assignee_id":
        user = session.get(User, value)
        return user.name if user is not None else f"user {value}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "—"
    return str(value).replace("_", " ")


def change_rows(session: Session, ticket: Ticket, preview: MacroPreview) -> list[dict[str, str]]:
    """Each field change of the preview with the ticket's current value beside the new one."""
    rows = []
    added = preview.changes.get("add_tags") or []
    removed = preview.changes.get("remove_tags") or []
    if added or removed:
        after = sorted((set(ticket.tags) | set(added)) - set(removed))
        rows.append(
            {
                "field": "Tags",
                "current": ", ".join(sorted(ticket.tags)) or "—",
                "new": ", ".join(after) or "—",
            }
        )
    for field, value in preview.changes.items():
        if field in ("add_tags", "remove_tags"):
            continue
        if field.startswith("custom_fields.") or field not in FIELD_LABELS:
            name = field.removeprefix("custom_fields.")
            current = _shown(
                session, field, (ticket.custom_fields or {}).get(name, getattr(ticket, field, None))
            )
        else:
            current = _shown(session, field, getattr(ticket, field, None))
        rows.append(
            {
                "field": FIELD_LABELS.get(field, field.replace("_", " ").capitalize()),
                "current": current,
                "new": _shown(session, field, value),
            }
        )
    return rows


def ticket_panels(session: Session, actor: Actor, ticket: Ticket) -> list[TicketPanel]:
    if not has_permission(actor, Permission.TICKET_REPLY):
        return []
    choices = [
        {"id": macro.id, "name": macro.name, "shared": macro.owner_id is None, "uses": macro.usage_count}
        for macro in macros.visible_macros(session, actor)
    ]
    return [
        TicketPanel(
            key="macros",
            title="Apply a macro",
            template="automation/macro_panel.html",
            context={"ticket_id": ticket.id, "macros": choices},
            place=PanelPlace.MAIN,
            order=40,
        )
    ]
