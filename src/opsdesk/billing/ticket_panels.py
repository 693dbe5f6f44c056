"""The billing panel beside a ticket: the requester's account's billing customer, subscription,
dunning state, recent invoices and charges, open disputes, and the actions the actor may take
(refund a charge, preview a plan or seat change, cancel). Its forms post to billing's page routes
(``/billing/tickets/{id}/...``), which redirect back to the ticket."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission
from opsdesk.billing.enums import CancelMode, RefundReason
from opsdesk.billing.service import ticket_panel
from opsdesk.tickets.models import Ticket
from opsdesk.web.panels import PanelPlace, TicketPanel

CANCEL_LABELS = {
    CancelMode.AT_PERIOD_END.value: "At the end of the period",
    CancelMode.NOW_WITH_CREDIT.value: "Now, unused time as credit",
    CancelMode.NOW_WITH_REFUND.value: "Now, refund the unused time",
    CancelMode.NOW_WITHOUT_PRORATION.value: "Now, without refund or credit",
}


def _day(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d}" if value is not None else "-"


def _instant(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value is not None else "-"


def panel_view(panel: ticket_panel.BillingPanel, ticket_id: int) -> dict[str, Any]:
    """The panel's view model: display strings only."""
    view = asdict(panel)
    for item in view["subscriptions"]:
        item["period"] = f"{_day(item['period_start'])} to {_day(item['period_end'])}"
        item["renews"] = _day(item["renews_at"]) if item["renews_at"] else None
        item["past_due_since"] = _day(item["past_due_since"]) if item["past_due_since"] else None
    for item in view["invoices"]:
        item["due"] = _day(item["due_at"])
    for item in view["payments"]:
        item["date"] = _day(item["created_at"])
    for item in view["disputes"]:
        item["due"] = _instant(item["evidence_due_at"])
    for item in view["dunning"]:
        item["since"] = _day(item["since"])
        item["next_retry"] = _instant(item["next_retry_at"]) if item["next_retry_at"] else None
    view["ticket_id"] = ticket_id
    view["refundable"] = [item for item in view["payments"] if item["refundable_minor"] > 0]
    view["reasons"] = [(reason.value, reason.value.replace("_", " ")) for reason in RefundReason]
    view["cancel_modes"] = list(CANCEL_LABELS.items())
    return view


def ticket_panels(session: Session, actor: Actor, ticket: Ticket) -> list[TicketPanel]:
    if not has_permission(actor, Permission.ACCOUNT_READ):
        return []
    panel = ticket_panel.panel_for_ticket(session, actor, ticket)
    if panel.customer_id is None:
        return []
    return [
        TicketPanel(
            key="billing",
            title="Billing",
            template="billing/ticket_side_panel.html",
            context={"billing": panel_view(panel, ticket.id)},
            place=PanelPlace.SIDE,
            order=30,
        )
    ]
