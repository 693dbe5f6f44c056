"""Per-ticket SLA clocks, driven by ticket events (registered in :mod:`opsdesk.reactions`).

- ``TicketCreated``: the chosen policy's first-reply and resolution targets start at creation.
- ``MessageAdded``: a public staff reply achieves first reply and next reply, and restarts the
  periodic-update target; a customer message after a staff reply starts a next-reply target.
- ``TicketUpdated``: ``pending`` pauses resolution and periodic update (``on_hold`` too when the
  policy says so); solving achieves every running target; reopening resumes resolution; a change
  of priority, group, category, channel or account chooses the policy again for running targets.
- :func:`sweep_breaches` (scheduled every minute) marks active targets whose ``due_at`` passed as
  breached, through the partial index of active targets' ``due_at``, and publishes :class:`SlaBreached`.

Each target keeps the policy and calendar in force when it started (see the models).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, inspect, select
from sqlalchemy.orm import Session

from opsdesk import bus, clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.sla.business_time import BusinessCalendar
from opsdesk.sla.calendars import calendar_by_id, default_calendar_id
from opsdesk.sla.enums import PAUSED_BY_PENDING, Metric, TargetKind, TargetStatus
from opsdesk.sla.events import SlaBreached
from opsdesk.sla.models import ACTIVE_STATUS, SlaTarget
from opsdesk.sla.policies import PolicyView, select_policy
from opsdesk.tickets.enums import AuthorKind, StatusCategory
from opsdesk.tickets.events import MessageAdded, TicketCreated, TicketUpdated
from opsdesk.tickets.models import Message, Ticket

ACTIVE = TargetStatus.ACTIVE.value
PAUSED = TargetStatus.PAUSED.value
ACHIEVED = TargetStatus.ACHIEVED.value
BREACHED = TargetStatus.BREACHED.value
RUNNING = (ACTIVE, PAUSED)
POLICY_KIND = TargetKind.POLICY.value
POLICY_FIELDS = frozenset({"priority", "group_id", "category", "channel", "account_id"})
SLA_ACTOR = Actor.system("SLA", via="sla")


# ------------------------------------------------------------------ arithmetic


def _calendar(session: Session, target: SlaTarget) -> BusinessCalendar | None:
    return calendar_by_id(session, target.calendar_id) if target.business_hours else None


def _used(calendar: BusinessCalendar | None, start: datetime, end: datetime) -> float:
    if end <= start:
        return 0.0
    if calendar is None:
        return (end - start).total_seconds()
    return calendar.between(start, end).total_seconds()


def _due(calendar: BusinessCalendar | None, since: datetime, remaining: float) -> datetime:
    remaining = max(remaining, 0.0)
    if calendar is None:
        return since + timedelta(seconds=remaining)
    return calendar.add(since, timedelta(seconds=remaining))


def _should_pause(target: SlaTarget, status: str) -> bool:
    if target.kind != POLICY_KIND or target.metric not in PAUSED_BY_PENDING:
        return False
    return status == StatusCategory.PENDING.value or (
        status == StatusCategory.ON_HOLD.value and target.pause_on_hold
    )


def _pause(session: Session, target: SlaTarget, at: datetime) -> None:
    if target.status != ACTIVE or target.running_since is None:
        return
    target.elapsed_seconds = target.elapsed_seconds + _used(
        _calendar(session, target), target.running_since, at
    )
    target.running_since = None
    target.due_at = None
    target.status = PAUSED


def _resume(session: Session, target: SlaTarget, at: datetime) -> None:
    if target.status != PAUSED:
        return
    target.status = ACTIVE
    target.running_since = at
    target.due_at = _due(_calendar(session, target), at, target.target_seconds - target.elapsed_seconds)


def _achieve(session: Session, target: SlaTarget, at: datetime) -> None:
    if target.status == BREACHED:
        if target.achieved_at is None:
            target.achieved_at = at  # met late: the breach stands, the figure is kept
        return
    if target.status == ACTIVE and target.due_at is not None and at > target.due_at:
        _breach(session, target)
        target.achieved_at = at
        return
    if target.status == ACTIVE and target.running_since is not None:
        target.elapsed_seconds = target.elapsed_seconds + _used(
            _calendar(session, target), target.running_since, at
        )
    target.running_since = None
    target.status = ACHIEVED
    target.achieved_at = at


def achieve_target(session: Session, target: SlaTarget, at: datetime) -> None:
    """Mark ``target`` met at ``at`` (a breach already recorded stands; met late past due breaches)."""
    _achieve(session, target, at)


def _breach(session: Session, target: SlaTarget) -> None:
    due = target.due_at or clock.now()
    target.status = BREACHED
    target.breached_at = due
    audit.record(
        session,
        SLA_ACTOR,
        entity_type="sla_target",
        entity_id=target.id,
        action="sla_breached",
        new={"metric": target.metric, "policy": target.policy_name, "due_at": due},
        ticket_id=target.ticket_id,
    )
    bus.publish(
        session,
        SlaBreached(
            ticket_id=target.ticket_id,
            target_id=target.id,
            metric=target.metric,
            policy_name=target.policy_name,
            due_at=due,
        ),
    )


# ------------------------------------------------------------------ starting


def _policy_target(policy: PolicyView, metric: Metric) -> tuple[int, bool] | None:
    spec = (policy.targets or {}).get(metric.value)
    if not spec:
        return None
    return int(spec["minutes"]) * 60, bool(spec.get("business_hours", False))


def _apply_policy(
    session: Session, target: SlaTarget, policy: PolicyView, seconds: int, business: bool
) -> None:
    target.policy_id = policy.id
    target.policy_name = policy.name
    target.target_seconds = seconds
    target.business_hours = business
    calendar_id = policy.calendar_id
    if business and calendar_id is None:
        calendar_id = default_calendar_id(session)
    target.calendar_id = calendar_id
    target.pause_on_hold = policy.pause_on_hold


_STARTED_KEY = "opsdesk_sla_started"


def _started(session: Session) -> dict[int, list[SlaTarget]]:
    """The targets this transaction started, per ticket (kept in ``session.info``, tied to the
    root transaction so a rolled-back one's are not remembered)."""
    marker = id(session.get_transaction())
    kept: tuple[int, dict[int, list[SlaTarget]]] | None = session.info.get(_STARTED_KEY)
    if kept is None or kept[0] != marker:
        kept = (marker, {})
        session.info[_STARTED_KEY] = kept
    return kept[1]


def remember_started(session: Session, target: SlaTarget) -> None:
    """Keep a target this transaction started (for :func:`targets_started_here`)."""
    _started(session).setdefault(target.ticket_id, []).append(target)


def targets_started_here(session: Session, ticket_id: int) -> list[SlaTarget]:
    """The targets this transaction started for the ticket (still kept, not deleted). For a
    ticket this transaction created, these are all of its targets: its answer needs no query."""
    return [target for target in _started(session).get(ticket_id, []) if not inspect(target).was_deleted]


def start_target(
    session: Session,
    ticket: Ticket,
    policy: PolicyView,
    metric: Metric,
    at: datetime,
    *,
    new_ticket: bool = False,
    flush: bool = True,
) -> SlaTarget | None:
    """Start ``metric``'s target of ``policy`` for the ticket at ``at`` (a new cycle).

    ``new_ticket``: the ticket was created in this transaction and this metric was not started
    for it yet, so this is its first cycle (no query for the last one)."""
    found = _policy_target(policy, metric)
    if found is None:
        return None
    seconds, business = found
    last_cycle = (
        None
        if new_ticket
        else session.scalar(
            select(func.max(SlaTarget.cycle)).where(
                SlaTarget.ticket_id == ticket.id, SlaTarget.metric == metric.value
            )
        )
    )
    target = SlaTarget(
        ticket_id=ticket.id,
        metric=metric.value,
        cycle=(last_cycle or 0) + 1,
        kind=POLICY_KIND,
        status=ACTIVE,
        started_at=at,
        running_since=at,
        elapsed_seconds=0.0,
    )
    _apply_policy(session, target, policy, seconds, business)
    target.due_at = _due(_calendar(session, target), at, seconds)
    session.add(target)
    remember_started(session, target)
    if _should_pause(target, ticket.status):
        _pause(session, target, at)
    if flush:
        session.flush()
    return target


def _open_targets(session: Session, ticket_id: int, *, unmet_breaches: bool = False) -> list[SlaTarget]:
    """Running targets; with ``unmet_breaches`` also breached ones not met yet (to record when
    they were met late)."""
    condition: ColumnElement[bool] = SlaTarget.status.in_(RUNNING)
    if unmet_breaches:
        condition = condition | ((SlaTarget.status == BREACHED) & SlaTarget.achieved_at.is_(None))
    return list(
        session.scalars(
            select(SlaTarget).where(SlaTarget.ticket_id == ticket_id, condition).order_by(SlaTarget.id)
        )
    )


# ------------------------------------------------------------------ reactions


def start_clocks(session: Session, event: TicketCreated) -> None:
    ticket = session.get(Ticket, event.ticket_id)
    if ticket is None:
        return
    policy = select_policy(session, ticket)
    if policy is None:
        return
    # Routing may have changed a field that chooses the policy before this reaction ran, and
    # that change already started the clocks (reselect_policy): those stand.
    already = {target.metric for target in _started(session).get(ticket.id, []) if target.kind == POLICY_KIND}
    for metric in (Metric.FIRST_REPLY, Metric.RESOLUTION):
        if metric.value not in already:
            start_target(session, ticket, policy, metric, ticket.created_at, new_ticket=True, flush=False)
    session.flush()


def on_message_added(session: Session, event: MessageAdded) -> None:
    if not event.is_public:
        return
    message = session.get(Message, event.message_id)
    ticket = session.get(Ticket, event.ticket_id)
    if message is None or ticket is None:
        return
    at = message.created_at
    running = _open_targets(session, ticket.id, unmet_breaches=True)
    if event.author_kind == AuthorKind.STAFF.value:
        for target in running:
            if target.metric in (
                Metric.FIRST_REPLY.value,
                Metric.NEXT_REPLY.value,
                Metric.PERIODIC_UPDATE.value,
            ):
                _achieve(session, target, at)
        if ticket.status in (StatusCategory.SOLVED.value, StatusCategory.CLOSED.value):
            return
        policy = select_policy(session, ticket)
        if policy is not None:
            start_target(session, ticket, policy, Metric.PERIODIC_UPDATE, at)
    elif event.author_kind == AuthorKind.CUSTOMER.value:
        if ticket.first_reply_at is None:
            return  # still waiting for the first reply: that target covers it
        if any(
            target.metric == Metric.NEXT_REPLY.value
            and target.status in RUNNING
            and target.kind == POLICY_KIND
            for target in running
        ):
            return
        policy = select_policy(session, ticket)
        if policy is not None:
            start_target(session, ticket, policy, Metric.NEXT_REPLY, at)
    session.flush()


def on_ticket_updated(session: Session, event: TicketUpdated) -> None:
    changed = set(event.changes)
    if "status" not in changed and not changed & POLICY_FIELDS:
        return
    ticket = session.get(Ticket, event.ticket_id)
    if ticket is None:
        return
    now = clock.now()
    if "status" in changed:
        _follow_status(session, ticket, str(event.changes["status"][0]), now)
    if changed & POLICY_FIELDS and ticket.status not in (
        StatusCategory.SOLVED.value,
        StatusCategory.CLOSED.value,
    ):
        reselect_policy(session, ticket, now)
    session.flush()


def _follow_status(session: Session, ticket: Ticket, old_status: str, now: datetime) -> None:
    status = ticket.status
    if status in (StatusCategory.SOLVED.value, StatusCategory.CLOSED.value):
        for target in _open_targets(session, ticket.id, unmet_breaches=True):
            _achieve(session, target, now)
        return
    if old_status in (StatusCategory.SOLVED.value, StatusCategory.CLOSED.value):
        # Reopened: full resolution runs again from here (it is measured to the last solve).
        resolution = session.scalars(
            select(SlaTarget)
            .where(
                SlaTarget.ticket_id == ticket.id,
                SlaTarget.metric == Metric.RESOLUTION.value,
                SlaTarget.status == ACHIEVED,
                SlaTarget.kind == POLICY_KIND,
            )
            .order_by(SlaTarget.cycle.desc())
        ).first()
        if resolution is not None:
            resolution.status = PAUSED
            resolution.achieved_at = None
    for target in _open_targets(session, ticket.id):
        if _should_pause(target, status):
            _pause(session, target, now)
        else:
            _resume(session, target, now)


def reselect_policy(session: Session, ticket: Ticket, now: datetime) -> None:
    """Fields that choose the policy changed: running targets follow the newly chosen policy,
    targets it does not have stop applying, and targets it adds start from their natural start."""
    policy = select_policy(session, ticket)
    running = _open_targets(session, ticket.id)
    for target in running:
        if target.kind != POLICY_KIND:
            continue  # a fixed deadline does not follow the policy
        if policy is not None and target.policy_id == policy.id:
            continue
        found = _policy_target(policy, Metric(target.metric)) if policy is not None else None
        if policy is None or found is None:
            session.delete(target)
            continue
        seconds, business = found
        calendar_before = _calendar(session, target)
        if target.status == ACTIVE and target.running_since is not None:
            target.elapsed_seconds = target.elapsed_seconds + _used(
                calendar_before, target.running_since, now
            )
            target.running_since = now
        _apply_policy(session, target, policy, seconds, business)
        if target.status == ACTIVE:
            target.due_at = _due(_calendar(session, target), now, seconds - target.elapsed_seconds)
    if policy is None:
        return
    session.flush()
    present = set(
        session.scalars(
            select(SlaTarget.metric).where(SlaTarget.ticket_id == ticket.id, SlaTarget.kind == POLICY_KIND)
        )
    )
    if ticket.first_reply_at is None and Metric.FIRST_REPLY.value not in present:
        start_target(session, ticket, policy, Metric.FIRST_REPLY, ticket.created_at)
    if Metric.RESOLUTION.value not in present:
        start_target(session, ticket, policy, Metric.RESOLUTION, ticket.created_at)


# ------------------------------------------------------------------ the sweep


def sweep_breaches(session: Session, *, limit: int = 5000) -> int:
    """Mark active targets whose due time passed as breached (the partial index of active due times)."""
    now = clock.now()
    due = list(
        session.scalars(
            select(SlaTarget)
            .where(SlaTarget.status == ACTIVE_STATUS, SlaTarget.due_at <= now)
            .order_by(SlaTarget.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for target in due:
        _breach(session, target)
    session.flush()
    return len(due)


def backfill_open_tickets(session: Session, *, batch: int = 500) -> int:
    """Start clocks for unsolved tickets that have none (tickets written in bulk, by an import or
    the demo seeder, before any policy existed). Returns how many tickets got targets."""
    started = 0
    last_id = 0
    while True:
        ids = list(
            session.scalars(
                select(Ticket.id)
                .where(
                    Ticket.id > last_id,
                    Ticket.status.in_(("new", "open", "pending", "on_hold")),
                    ~select(SlaTarget.id).where(SlaTarget.ticket_id == Ticket.id).exists(),
                )
                .order_by(Ticket.id)
                .limit(batch)
            )
        )
        if not ids:
            return started
        for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(ids))):
            policy = select_policy(session, ticket)
            if policy is None:
                continue
            if ticket.first_reply_at is None:
                start_target(session, ticket, policy, Metric.FIRST_REPLY, ticket.created_at)
            start_target(session, ticket, policy, Metric.RESOLUTION, ticket.created_at)
            started += 1
        last_id = ids[-1]
