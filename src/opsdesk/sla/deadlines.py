"""Fixed-deadline targets: a due time another domain sets on a ticket (a payment dispute's evidence
deadline, a contractual promise), tracked like any SLA target.

A deadline target is a row of ``sla_targets`` with ``kind = "deadline"``: it appears in
``GET /api/v1/tickets/{id}/sla`` and the ticket JSON's ``"sla"`` (``policy`` is its reason), the
breach sweep breaches it when ``due_at`` passes and publishes :class:`~opsdesk.sla.events.SlaBreached`
(so triggers and the escalation matrix fire), and solving the ticket achieves it. Unlike a policy's
target its due time is fixed: waiting on the customer does not pause it, and neither a change of
policy nor a calendar edit moves it. A reply metric (``first_reply``, ``next_reply``,
``periodic_update``) is also achieved by a public staff reply, as a policy's would be.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem
from opsdesk.sla.clocks import achieve_target, remember_started
from opsdesk.sla.enums import Metric, TargetKind, TargetStatus
from opsdesk.sla.errors import InvalidDeadlineError
from opsdesk.sla.models import SlaTarget
from opsdesk.tickets.enums import StatusCategory
from opsdesk.tickets.models import Ticket
from opsdesk.tickets.service import access_ticket

SLA_DEADLINE_ACTOR = Actor.system("SLA", via="sla")
REASON_MAX = 500


def start_deadline_target(
    session: Session,
    ticket: Ticket,
    *,
    metric: str = Metric.RESOLUTION.value,
    due_at: datetime,
    reason: str,
    actor: Actor | None = None,
) -> SlaTarget:
    """Start a target due at ``due_at`` on ``ticket`` (a new cycle of ``metric``).

    Validated first (nothing is written on a refusal): ``metric`` one of the four metrics,
    ``due_at`` timezone-aware, ``reason`` 1 to 500 characters, the ticket not closed. A due time
    already past is accepted: the next breach sweep (every minute) breaches it. Recorded in the
    ticket's audit trail as ``sla_deadline_started`` under ``actor`` (the SLA system actor when
    ``None``). Services of other domains call this directly, inside their own transaction.
    """
    problems: list[FieldProblem] = []
    if metric not in {member.value for member in Metric}:
        problems.append(FieldProblem(("metric",), f"one of {[member.value for member in Metric]}"))
    if due_at.tzinfo is None or due_at.utcoffset() is None:
        problems.append(FieldProblem(("due_at",), "a time with a time zone (UTC offset)"))
    cleaned = (reason or "").strip()
    if not cleaned:
        problems.append(FieldProblem(("reason",), "say why the deadline exists"))
    elif len(cleaned) > REASON_MAX:
        problems.append(FieldProblem(("reason",), f"at most {REASON_MAX} characters"))
    if ticket.status == StatusCategory.CLOSED.value:
        problems.append(FieldProblem(("ticket_id",), "the ticket is closed"))
    if problems:
        raise InvalidDeadlineError("the deadline is not valid", fields=problems)
    now = clock.now()
    last_cycle = session.scalar(
        select(func.max(SlaTarget.cycle)).where(SlaTarget.ticket_id == ticket.id, SlaTarget.metric == metric)
    )
    target = SlaTarget(
        ticket_id=ticket.id,
        metric=metric,
        cycle=(last_cycle or 0) + 1,
        kind=TargetKind.DEADLINE.value,
        reason=cleaned,
        policy_id=None,
        policy_name=cleaned[:120],
        calendar_id=None,
        business_hours=False,
        pause_on_hold=False,
        target_seconds=max(int((due_at - now).total_seconds()), 0),
        status=TargetStatus.ACTIVE.value,
        started_at=now,
        running_since=now,
        elapsed_seconds=0.0,
        due_at=due_at,
    )
    session.add(target)
    remember_started(session, target)
    session.flush()
    audit.record(
        session,
        actor or SLA_DEADLINE_ACTOR,
        entity_type="sla_target",
        entity_id=target.id,
        action="sla_deadline_started",
        new={"metric": metric, "due_at": due_at, "reason": cleaned},
        ticket_id=ticket.id,
    )
    return target


def meet_deadline_targets(session: Session, ticket_id: int, *, reason_prefix: str, actor: Actor) -> int:
    """Mark the ticket's open deadline targets whose reason starts with ``reason_prefix`` as met,
    now: the thing the deadline was for has happened (a dispute's evidence went in, or the bank
    decided the dispute first). A deadline already breached stays breached. Returns how many."""
    open_statuses = (TargetStatus.ACTIVE.value, TargetStatus.PAUSED.value)
    targets = session.scalars(
        select(SlaTarget).where(
            SlaTarget.ticket_id == ticket_id,
            SlaTarget.kind == TargetKind.DEADLINE.value,
            SlaTarget.status.in_(open_statuses),
        )
    ).all()
    now = clock.now()
    met = 0
    for target in targets:
        if not (target.reason or "").startswith(reason_prefix):
            continue
        achieve_target(session, target, now)
        audit.record(
            session,
            actor,
            entity_type="sla_target",
            entity_id=target.id,
            action="sla_deadline_met",
            new={"metric": target.metric, "status": target.status, "reason": target.reason},
            ticket_id=ticket_id,
        )
        met += 1
    return met


def add_deadline(
    session: Session, actor: Actor, ticket_id: int, *, metric: str, due_at: datetime, reason: str
) -> SlaTarget:
    """The API's entry: an agent who may edit the ticket sets a deadline on it."""
    ticket = access_ticket(session, actor, ticket_id, for_update=True)
    require(actor, Permission.TICKET_WRITE)
    return start_deadline_target(session, ticket, metric=metric, due_at=due_at, reason=reason, actor=actor)
