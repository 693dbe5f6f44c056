"""Reading SLA state: each ticket's targets (the ``"sla"`` of the ticket JSON) and the views
"breaching in the next hour" and "breached". One query per call, whatever the number of tickets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.sla.clocks import targets_started_here
from opsdesk.sla.enums import Metric
from opsdesk.sla.models import ACTIVE_STATUS, BREACHED_STATUS, SlaTarget
from opsdesk.tickets.enums import UNSOLVED_STATUSES
from opsdesk.tickets.models import Ticket
from opsdesk.tickets.service import access_ticket, visible_tickets

METRIC_ORDER = {metric.value: index for index, metric in enumerate(Metric)}


@dataclass(frozen=True, slots=True)
class SlaItem:
    metric: str
    status: str
    due_at: datetime | None
    business_hours: bool
    policy: str
    time_left_seconds: int | None
    target_minutes: int
    achieved_at: datetime | None
    breached_at: datetime | None
    kind: str = "policy"
    reason: str | None = None


def item_of(target: SlaTarget, now: datetime) -> SlaItem:
    if target.status == "active" and target.due_at is not None:
        left: int | None = int((target.due_at - now).total_seconds())
    elif target.status == "paused":
        left = int(max(target.target_seconds - target.elapsed_seconds, 0))
    else:
        left = None
    return SlaItem(
        metric=target.metric,
        status=target.status,
        due_at=target.due_at,
        business_hours=target.business_hours,
        policy=target.policy_name,
        time_left_seconds=left,
        target_minutes=target.target_seconds // 60,
        achieved_at=target.achieved_at,
        breached_at=target.breached_at,
        kind=target.kind,
        reason=target.reason,
    )


def _display_order(pair: tuple[tuple[str, int], SlaTarget]) -> tuple[int, int]:
    (metric, deadline_id), _ = pair
    return METRIC_ORDER[metric], deadline_id


# Built once (every ticket answer asks): one ticket, or a page of them.
_TARGETS_OF_TICKET = (
    select(SlaTarget).where(SlaTarget.ticket_id == bindparam("ticket_id")).order_by(SlaTarget.cycle)
)
_TARGETS_OF_TICKETS = (
    select(SlaTarget)
    .where(SlaTarget.ticket_id.in_(bindparam("ticket_ids", expanding=True)))
    .order_by(SlaTarget.ticket_id, SlaTarget.cycle)
)


def _current_items(targets: Iterable[SlaTarget], now: datetime) -> list[SlaItem]:
    """One ticket's targets (in cycle order) as shown: the latest cycle of each policy metric,
    in metric order, then each fixed deadline after its metric's."""
    by_metric: dict[tuple[str, int], SlaTarget] = {}
    for target in targets:
        # Later cycles replace earlier ones; fixed deadlines are each their own (keyed by id).
        by_metric[(target.metric, 0 if target.kind == "policy" else target.id)] = target
    return [item_of(target, now) for _, target in sorted(by_metric.items(), key=_display_order)]


def sla_for_tickets(session: Session, ticket_ids: Iterable[int]) -> dict[int, list[SlaItem]]:
    """The current targets of each ticket (see :func:`_current_items`). This is the field
    provider behind ``"sla"`` in the ticket JSON: one query for a page."""
    ids = list(dict.fromkeys(ticket_ids))
    if not ids:
        return {}
    rows = (
        session.scalars(_TARGETS_OF_TICKET, {"ticket_id": ids[0]})
        if len(ids) == 1
        else session.scalars(_TARGETS_OF_TICKETS, {"ticket_ids": ids})
    )
    targets: dict[int, list[SlaTarget]] = {ticket_id: [] for ticket_id in ids}
    for target in rows:
        targets[target.ticket_id].append(target)
    now = clock.now()
    return {ticket_id: _current_items(of_ticket, now) for ticket_id, of_ticket in targets.items()}


def sla_of_new_ticket(session: Session, ticket_id: int) -> list[SlaItem]:
    """What :func:`sla_for_tickets` gives for a ticket created in this transaction, without a
    query: all its targets were started here (the creation path's answer is built in the write
    lock on SQLite, so a query there costs every writer)."""
    started = sorted(targets_started_here(session, ticket_id), key=lambda target: (target.cycle, target.id))
    return _current_items(started, clock.now())


def ticket_sla(session: Session, actor: Actor, ticket_id: int) -> list[SlaItem]:
    access_ticket(session, actor, ticket_id)
    return sla_for_tickets(session, [ticket_id]).get(ticket_id, [])


@dataclass(frozen=True, slots=True)
class SlaViewRow:
    ticket_id: int
    subject: str
    priority: str
    status: str
    metric: str
    policy: str
    due_at: datetime | None
    time_left_seconds: int | None


def breaching_soon(
    session: Session, actor: Actor, *, within: timedelta = timedelta(hours=1), limit: int = 200
) -> list[SlaViewRow]:
    """Active targets due within ``within`` (soonest first), on tickets the actor may see."""
    now = clock.now()
    tickets = visible_tickets(actor).subquery()
    rows = session.execute(
        select(SlaTarget, tickets.c.subject, tickets.c.priority, tickets.c.status)
        .join(tickets, tickets.c.id == SlaTarget.ticket_id)
        .where(SlaTarget.status == ACTIVE_STATUS, SlaTarget.due_at > now, SlaTarget.due_at <= now + within)
        .order_by(SlaTarget.due_at)
        .limit(limit)
    ).all()
    return [_view_row(target, subject, priority, status, now) for target, subject, priority, status in rows]


def breached(session: Session, actor: Actor, *, limit: int = 200) -> list[SlaViewRow]:
    """Unsolved tickets with a breached target, most recent breach first."""
    now = clock.now()
    tickets = visible_tickets(actor).where(Ticket.status.in_(UNSOLVED_STATUSES)).subquery()
    rows = session.execute(
        select(SlaTarget, tickets.c.subject, tickets.c.priority, tickets.c.status)
        .join(tickets, tickets.c.id == SlaTarget.ticket_id)
        # Every breached target has a breached_at; saying so lets the newest breaches be read
        # backwards from the breached_at index, past the NULLs of targets that never breached.
        .where(SlaTarget.status == BREACHED_STATUS, SlaTarget.breached_at.is_not(None))
        .order_by(SlaTarget.breached_at.desc())
        .limit(limit)
    ).all()
    return [_view_row(target, subject, priority, status, now) for target, subject, priority, status in rows]


def _view_row(target: SlaTarget, subject: str, priority: str, status: str, now: datetime) -> SlaViewRow:
    left = int((target.due_at - now).total_seconds()) if target.due_at is not None else None
    return SlaViewRow(
        ticket_id=target.ticket_id,
        subject=subject,
        priority=priority,
        status=status,
        metric=target.metric,
        policy=target.policy_name,
        due_at=target.due_at,
        time_left_seconds=left,
    )
