"""A dispute's evidence deadline as its ticket's SLA: when a dispute opens, the ticket's
resolution target is due at the bank's evidence due time minus the safety margin an admin sets
(24 hours unless changed), so the ticket breaches (and escalates) before the bank's deadline.

Handler of :class:`~opsdesk.billing.events.DisputeOpened` (registered in ``opsdesk.reactions``),
run in the transaction that opened the dispute. A dispute without a due time, without a ticket,
or whose ticket is closed starts nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.billing.events import DisputeOpened
from opsdesk.billing.service.policy import dispute_deadline_margin_hours
from opsdesk.sla.deadlines import start_deadline_target
from opsdesk.tickets.models import Ticket

DEADLINE_ACTOR = Actor.system("billing", via="dispute")


def start_evidence_deadline(session: Session, event: DisputeOpened) -> None:
    if event.ticket_id is None or event.evidence_due_at is None:
        return
    ticket = session.get(Ticket, event.ticket_id)
    if ticket is None or ticket.status == "closed":
        return
    margin = dispute_deadline_margin_hours(session)
    start_deadline_target(
        session,
        ticket,
        metric="resolution",
        due_at=event.evidence_due_at - timedelta(hours=margin),
        reason=f"Dispute {event.dispute_id}: evidence due {event.evidence_due_at:%Y-%m-%d %H:%M} UTC"
        f" (less a {margin} h safety margin)",
        actor=DEADLINE_ACTOR,
    )
