"""The facts rule conditions look at, read from a ticket at an instant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from opsdesk.tickets.models import Ticket


def _hours_since(instant: datetime | None, now: datetime) -> float | None:
    return (now - instant).total_seconds() / 3600 if instant is not None else None


def ticket_facts(
    ticket: Ticket, now: datetime, *, event: str | None = None, sla_metric: str | None = None
) -> dict[str, Any]:
    account = ticket.account
    return {
        "status": ticket.status,
        "priority": ticket.priority,
        "type": ticket.type,
        "category": ticket.category,
        "channel": ticket.channel,
        "tier": account.tier if account is not None else None,
        "account_hot": bool(account.is_hot) if account is not None else False,
        "group_id": ticket.group_id,
        "assignee_id": ticket.assignee_id,
        "subject": ticket.subject,
        "tags": list(ticket.tags),
        "custom_fields": dict(ticket.custom_fields or {}),
        "event": event,
        "sla_metric": sla_metric,
        "hours_since_created": _hours_since(ticket.created_at, now),
        "hours_since_updated": _hours_since(ticket.updated_at, now),
        "hours_since_status_change": _hours_since(ticket.status_changed_at, now),
        "hours_since_customer_message": _hours_since(ticket.last_customer_message_at, now),
        "hours_since_staff_reply": _hours_since(ticket.last_staff_reply_at, now),
    }
