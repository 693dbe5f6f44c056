"""A dispute's evidence deadline as its ticket's SLA: when a dispute opens, the ticket's
resolution target is due at the bank's evidence due time minus the safety margin an admin sets
(24 hours unless changed), so the ticket breaches (and escalates) before the bank's deadline.

Handler of :class:`~opsdesk.billing.events.DisputeOpened` (registered in ``opsdesk.reactions``),
run in the transaction that opened the dispute. A dispute without a due time, without a ticket,
or whose ticket is closed starts nothing. The deadline is met when the evidence is submitted, or
when the dispute closes before that (the bank decided, or the inquiry was withdrawn).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.billing.events import DisputeClosed, DisputeOpened
from opsdesk.billing.models import Dispute
from opsdesk.billing.service.policy import dispute_deadline_margin_hours
from opsdesk.sla.deadlines import meet_deadline_targets, start_deadline_target
from opsdesk.tickets.models import Ticket

DEADLINE_ACTOR = Actor.system("billing", via="dispute")


def deadline_reason_prefix(dispute_id: int) -> str:
    return f"Dispute {dispute_id}:"


def meet_evidence_deadline(session: Session, dispute: Dispute, actor: Actor) -> None:
    """The evidence went in (or the dispute closed first): the ticket's deadline is met."""
    if dispute.ticket_id is not None:
        meet_deadline_targets(
            session, dispute.ticket_id, reason_prefix=deadline_reason_prefix(dispute.id), actor=actor
        )


def on_dispute_closed(session: Session, event: DisputeClosed) -> None:
    """Handler of DisputeClosed: a decided dispute needs no evidence any more."""
    dispute = session.get(Dispute, event.dispute_id)
    if dispute is not None:
        meet_evidence_deadline(session, dispute, DEADLINE_ACTOR)


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
        reason=f"{deadline_reason_prefix(event.dispute_id)} evidence due"
        f" {event.evidence_due_at:%Y-%m-%d %H:%M} UTC (less a {margin} h safety margin)",
        actor=DEADLINE_ACTOR,
    )
