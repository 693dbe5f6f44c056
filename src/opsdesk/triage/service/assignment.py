"""Assignment inside a group (manual, round-robin, least-loaded), agents' availability, and
reassignment when an agent goes away.

The choice itself is the pure :mod:`opsdesk.triage.assignment_policy`; this module gathers the
candidates (members with their open-ticket counts, in one query each), applies the choice through
``tickets.service.update_ticket`` and writes an ``assigned`` audit row with the reason. The backlog
path (:func:`assign_backlog`) makes the same choices for many tickets at once, keeping loads in
memory and writing rows in bulk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from opsdesk import bus, clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.enums import Availability
from opsdesk.auth.models import AuditEvent, Group, GroupMembership, User
from opsdesk.auth.permissions import Permission, has_permission, require
from opsdesk.errors import FieldProblem
from opsdesk.tickets import service as tickets
from opsdesk.tickets.enums import UNSOLVED_STATUSES
from opsdesk.tickets.events import TicketUpdated
from opsdesk.tickets.models import Account, Ticket
from opsdesk.triage.assignment_policy import Candidate, Choice, Need, choose_agent
from opsdesk.triage.enums import AssignmentMode
from opsdesk.triage.errors import InvalidAssignmentError
from opsdesk.triage.events import AgentAvailabilityChanged, TicketAssigned
from opsdesk.triage.models import GroupAssignment

ASSIGNMENT_ACTOR = Actor.system("assignment", via="triage")
REASSIGN_STATUSES = ("new", "open")


def group_assignment(session: Session, group_id: int) -> GroupAssignment:
    settings = session.get(GroupAssignment, group_id)
    if settings is None:
        settings = GroupAssignment(
            group_id=group_id,
            mode=AssignmentMode.MANUAL.value,
            senior_level=2,
            required_skills=[],
            updated_at=clock.now(),
        )
    return settings


def update_group_assignment(
    session: Session,
    actor: Actor,
    group_id: int,
    *,
    mode: str,
    senior_level: int = 2,
    required_skills: Sequence[str] = (),
) -> GroupAssignment:
    require(actor, Permission.RULE_MANAGE)
    problems: list[FieldProblem] = []
    if session.get(Group, group_id) is None:
        problems.append(FieldProblem(("group_id",), f"group {group_id} does not exist"))
    if mode not in {member.value for member in AssignmentMode}:
        problems.append(
            FieldProblem(("mode",), "must be one of " + ", ".join(member.value for member in AssignmentMode))
        )
    if not 1 <= senior_level <= 10:
        problems.append(FieldProblem(("senior_level",), "must be between 1 and 10"))
    skills = sorted({skill.strip().lower() for skill in required_skills if skill.strip()})
    if problems:
        raise InvalidAssignmentError("the assignment settings are not valid", fields=problems)
    settings = session.get(GroupAssignment, group_id)
    old = (
        None
        if settings is None
        else {
            "mode": settings.mode,
            "senior_level": settings.senior_level,
            "required_skills": settings.required_skills,
        }
    )
    if settings is None:
        settings = GroupAssignment(group_id=group_id)
        session.add(settings)
    settings.mode = mode
    settings.senior_level = senior_level
    settings.required_skills = skills
    settings.updated_at = clock.now()
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="group_assignment",
        entity_id=group_id,
        action="updated",
        old=old,
        new={"mode": mode, "senior_level": senior_level, "required_skills": skills},
    )
    return settings


def open_counts(session: Session, user_ids: Sequence[int]) -> dict[int, int]:
    if not user_ids:
        return {}
    rows = session.execute(
        select(Ticket.assignee_id, func.count())
        .where(Ticket.assignee_id.in_(list(user_ids)), Ticket.status.in_(sorted(UNSOLVED_STATUSES)))
        .group_by(Ticket.assignee_id)
    )
    return {int(user_id or 0): int(count) for user_id, count in rows}


def candidates(session: Session, group_id: int) -> list[Candidate]:
    users = list(
        session.scalars(
            select(User)
            .join(GroupMembership, GroupMembership.user_id == User.id)
            .where(GroupMembership.group_id == group_id, User.role != "viewer")
            .order_by(User.id)
        )
    )
    counts = open_counts(session, [user.id for user in users])
    return [
        Candidate(
            user_id=user.id,
            name=user.name,
            open_count=counts.get(user.id, 0),
            capacity=user.capacity,
            skills=frozenset(skill.lower() for skill in user.skills or []),
            languages=frozenset(language.lower() for language in user.languages or []),
            availability=user.availability,
            seniority=user.seniority,
            is_active=user.is_active,
        )
        for user in users
    ]


def need_for(ticket: Ticket, settings: GroupAssignment, extra_skills: frozenset[str] = frozenset()) -> Need:
    account: Account | None = ticket.account
    return Need(
        required_skills=frozenset(settings.required_skills or []) | extra_skills,
        language=(ticket.language or "").split("-")[0].lower() or None,
        needs_senior=bool(account is not None and (account.is_hot or account.tier == "enterprise")),
        senior_level=settings.senior_level,
    )


def _record(
    session: Session, actor: Actor, ticket: Ticket, choice: Choice, *, reason_prefix: str = ""
) -> None:
    reason = (reason_prefix + choice.reason) if reason_prefix else choice.reason
    audit.record(
        session,
        actor,
        entity_type="ticket",
        entity_id=ticket.id,
        action="assigned",
        new={"assignee_id": ticket.assignee_id, "group_id": ticket.group_id},
        ticket_id=ticket.id,
        reason=reason,
    )
    bus.publish(session, TicketAssigned(ticket.id, ticket.assignee_id, ticket.group_id, reason))


def assign_in_group(
    session: Session,
    ticket: Ticket,
    *,
    extra_skills: frozenset[str] = frozenset(),
    exclude_user_id: int | None = None,
    reason_prefix: str = "",
) -> Choice:
    """Pick the agent for ``ticket`` inside its group by the group's mode, and assign."""
    if ticket.group_id is None:
        return Choice(None, "the ticket has no group")
    settings = group_assignment(session, ticket.group_id)
    if settings.mode == AssignmentMode.MANUAL.value:
        # nothing decided, nothing to record: the ticket waits in the group's queue for a person
        return Choice(None, "the group assigns by hand")
    pool = [c for c in candidates(session, ticket.group_id) if c.user_id != exclude_user_id]
    choice = choose_agent(
        settings.mode,
        pool,
        need_for(ticket, settings, extra_skills),
        last_assigned_user_id=settings.last_assigned_user_id,
    )
    if choice.user_id is not None:
        tickets.update_ticket(session, ASSIGNMENT_ACTOR, ticket, {"assignee_id": choice.user_id})
        if settings.mode == AssignmentMode.ROUND_ROBIN.value:
            if session.get(GroupAssignment, ticket.group_id) is None:
                session.add(settings)
            settings.last_assigned_user_id = choice.user_id
            session.flush()
    _record(session, ASSIGNMENT_ACTOR, ticket, choice, reason_prefix=reason_prefix)
    return choice


def assign_backlog(session: Session, actor: Actor, group_id: int, *, limit: int = 1000) -> int:
    """Assign up to ``limit`` unassigned, unsolved tickets of a group (oldest first) in one pass.

    Same choices as :func:`assign_in_group`, with the loads kept in memory between tickets and the
    ticket updates and audit rows written in bulk. Returns how many were assigned."""
    require(actor, Permission.TICKET_BULK)
    settings = group_assignment(session, group_id)
    if settings.mode == AssignmentMode.MANUAL.value:
        return 0
    pool = candidates(session, group_id)
    by_id = {candidate.user_id: candidate for candidate in pool}
    rows = session.execute(
        select(Ticket.id, Ticket.language, Account.tier, Account.is_hot)
        .outerjoin(Account, Account.id == Ticket.account_id)
        .where(
            Ticket.group_id == group_id,
            Ticket.assignee_id.is_(None),
            Ticket.status.in_(sorted(UNSOLVED_STATUSES)),
        )
        .order_by(Ticket.id)
        .limit(limit)
    ).all()
    now = clock.now()
    last = settings.last_assigned_user_id
    updates: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    base_skills = frozenset(settings.required_skills or [])
    for ticket_id, language, tier, is_hot in rows:
        need = Need(
            required_skills=base_skills,
            language=(language or "").split("-")[0].lower() or None,
            needs_senior=bool(is_hot or tier == "enterprise"),
            senior_level=settings.senior_level,
        )
        choice = choose_agent(settings.mode, pool, need, last_assigned_user_id=last)
        if choice.user_id is None:
            # only hard requirements refuse a ticket, and in a backlog they are the same for
            # every ticket (group skills, capacity, availability): nobody is left for the rest
            break
        by_id[choice.user_id].open_count += 1
        last = choice.user_id
        updates.append({"ticket_id": ticket_id, "assignee": choice.user_id})
        audits.append(
            {
                "ticket_id": ticket_id,
                "entity_type": "ticket",
                "entity_id": ticket_id,
                "action": "assigned",
                "field": "assignee_id",
                "old_value": None,
                "new_value": choice.user_id,
                "actor_kind": actor.kind.value,
                "actor_id": actor.actor_id,
                "actor_name": actor.name,
                "via": actor.via,
                "reason": choice.reason,
                "created_at": now,
            }
        )
    if not updates:
        return 0
    session.connection().execute(
        update(Ticket.__table__)  # type: ignore[arg-type]
        .where(Ticket.__table__.c.id == bindparam("ticket_id"), Ticket.__table__.c.assignee_id.is_(None))
        .values(assignee_id=bindparam("assignee"), updated_at=now),
        updates,
    )
    session.execute(insert(AuditEvent), audits)
    if settings.mode == AssignmentMode.ROUND_ROBIN.value:
        if session.get(GroupAssignment, group_id) is None:
            session.add(settings)
        settings.last_assigned_user_id = last
    session.flush()
    # one event per ticket, as for any assignment; handlers that can take the batch at once look
    # their configuration up once (triggers, webhooks)
    bus.publish_many(
        session,
        [
            TicketUpdated(
                ticket_id=item["ticket_id"], changes={"assignee_id": (None, item["assignee"])}, via=actor.via
            )
            for item in updates
        ],
    )
    return len(updates)


def set_availability(session: Session, actor: Actor, user_id: int, availability: str) -> User:
    """An agent goes online, away or off shift; their new and open tickets move to someone
    available when they leave."""
    user = session.get(User, user_id)
    if user is None:
        raise InvalidAssignmentError(
            "unknown agent", fields=[FieldProblem(("user_id",), f"user {user_id} not found")]
        )
    if actor.user_id != user_id and not has_permission(actor, Permission.RULE_MANAGE):
        require(actor, Permission.USER_MANAGE)
    if availability not in {member.value for member in Availability}:
        raise InvalidAssignmentError(
            "unknown availability",
            fields=[FieldProblem(("availability",), "must be one of online, away, off_shift")],
        )
    old = user.availability
    if old == availability:
        return user
    user.availability = availability
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="user",
        entity_id=user.id,
        action="updated",
        field="availability",
        old=old,
        new=availability,
    )
    bus.publish(session, AgentAvailabilityChanged(user.id, old, availability))
    return user


def reassign_when_away(session: Session, event: AgentAvailabilityChanged) -> None:
    """``triage.reassign``: the agent left; hand their new and open tickets to available colleagues
    of each ticket's group, or back to the group queue when nobody can take them."""
    if event.new == Availability.ONLINE.value:
        return
    user = session.get(User, event.user_id)
    name = user.name if user is not None else f"user {event.user_id}"
    held = list(
        session.scalars(
            select(Ticket)
            .where(Ticket.assignee_id == event.user_id, Ticket.status.in_(REASSIGN_STATUSES))
            .order_by(Ticket.id)
        )
    )
    prefix = f"{name} is {event.new.replace('_', ' ')}; "
    for ticket in held:
        choice = Choice(None, "no group")
        if ticket.group_id is not None:
            settings = group_assignment(session, ticket.group_id)
            pool = [c for c in candidates(session, ticket.group_id) if c.user_id != event.user_id]
            mode = (
                settings.mode
                if settings.mode != AssignmentMode.MANUAL.value
                else AssignmentMode.LEAST_LOADED.value
            )
            choice = choose_agent(
                mode, pool, need_for(ticket, settings), last_assigned_user_id=settings.last_assigned_user_id
            )
        if choice.user_id is None:
            choice = Choice(None, f"back to the group queue ({choice.reason})")
        tickets.update_ticket(session, ASSIGNMENT_ACTOR, ticket, {"assignee_id": choice.user_id})
        _record(session, ASSIGNMENT_ACTOR, ticket, choice, reason_prefix=prefix)


def agent_loads(session: Session, group_id: int) -> list[Candidate]:
    return candidates(session, group_id)
