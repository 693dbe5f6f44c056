"""The SLA panel beside a ticket: each target with its status, due time, time left, business or
calendar time, and the policy (or the reason of a fixed deadline)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.sla import queries
from opsdesk.tickets.models import Ticket
from opsdesk.web.panels import PanelPlace, TicketPanel

METRIC_LABELS = {
    "first_reply": "First reply",
    "next_reply": "Next reply",
    "periodic_update": "Periodic update",
    "resolution": "Resolution",
}


def time_left(seconds: int | None, status: str) -> str:
    """``2h 05m left``, ``35m late``, ``3d 4h left``; empty when the clock does not run."""
    if seconds is None or status not in ("active", "paused"):
        return ""
    late = seconds < 0
    minutes = abs(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    text = f"{days}d {hours}h" if days else f"{hours}h {mins:02d}m" if hours else f"{mins}m"
    if status == "paused":
        return f"{text} left when it resumes"
    return f"{text} late" if late else f"{text} left"


def sla_rows(items: list[queries.SlaItem]) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        overdue = (
            item.status == "active" and item.time_left_seconds is not None and item.time_left_seconds < 0
        )
        rows.append(
            {
                "metric": METRIC_LABELS.get(item.metric, item.metric),
                "status": "overdue" if overdue else item.status,
                "due_at": item.due_at.strftime("%Y-%m-%d %H:%M UTC") if item.due_at else "",
                "due_iso": item.due_at.isoformat() if item.due_at else "",
                "left": time_left(item.time_left_seconds, item.status),
                "clock": "business hours" if item.business_hours else "calendar time",
                "policy": item.policy,
                "deadline": item.kind == "deadline",
                "met_at": item.achieved_at.strftime("%Y-%m-%d %H:%M UTC") if item.achieved_at else "",
                "breached_at": item.breached_at.strftime("%Y-%m-%d %H:%M UTC") if item.breached_at else "",
            }
        )
    return rows


def ticket_panels(session: Session, actor: Actor, ticket: Ticket) -> list[TicketPanel]:
    del actor  # the ticket page already checked the actor may see the ticket
    items = queries.sla_for_tickets(session, [ticket.id]).get(ticket.id, [])
    return [
        TicketPanel(
            key="sla",
            title="SLA",
            template="sla/ticket_panel.html",
            context={"targets": sla_rows(items)},
            place=PanelPlace.SIDE,
            order=5,
        )
    ]
