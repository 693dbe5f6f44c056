"""The life of a ticket: creation, messages, field changes, status rules, merges and closing.

Status rules (the six categories):
- a customer message reopens ``solved`` (counted in ``reopened_count``) and moves ``pending`` to
  ``open``; ``closed`` is final, so a customer writing to a closed ticket starts a follow-up
  ticket linked to it;
- a staff public reply moves ``new`` to ``open`` unless the agent chose a status;
- solving sets ``solved_at`` (the last solve) and ``first_solved_at``; tickets solved for
  :data:`CLOSE_AFTER` close.
Every channel converges on :func:`receive` (customer side) or :func:`create_ticket`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from opsdesk import bus, clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import Group, GroupMembership, User
from opsdesk.auth.permissions import Permission, is_group_scoped, require
from opsdesk.direct_insert import insert_all_as_loaded, insert_as_loaded
from opsdesk.errors import FieldProblem, ValidationFailedError
from opsdesk.tickets.enums import UNSOLVED_STATUSES, AuthorKind, Channel, Priority, StatusCategory, TicketType
from opsdesk.tickets.errors import InvalidTicketError, MergeRefusedError, TicketClosedError
from opsdesk.tickets.events import MessageAdded, TicketCreated, TicketMerged, TicketUpdated
from opsdesk.tickets.html import html_to_text, sanitize_html
from opsdesk.tickets.models import (
    Account,
    Attachment,
    Message,
    Person,
    Ticket,
    TicketStatusDefinition,
    TicketTag,
)
from opsdesk.tickets.service.custom_fields import missing_required, validate_custom_fields
from opsdesk.tickets.service.people import find_or_create_person

CLOSE_AFTER = timedelta(days=4)
MAX_SUBJECT = 500
MAX_BODY = 1_000_000


@dataclass(slots=True)
class NewTicket:
    """What a channel or the API knows about a new ticket. The body is the requester's message."""

    subject: str
    body_text: str
    requester_email: str
    requester_name: str | None = None
    body_html: str | None = None
    priority: str = Priority.NORMAL.value
    type: str = TicketType.QUESTION.value
    channel: str = Channel.API.value
    tags: Sequence[str] = ()
    custom_fields: Mapping[str, Any] = field(default_factory=dict)
    category: str | None = None
    language: str | None = None
    group_id: int | None = None
    assignee_id: int | None = None
    external_message_id: str | None = None
    follow_up_of_id: int | None = None
    attachments: Sequence[Attachment] = ()


@dataclass(slots=True)
class IncomingMessage:
    """A customer's message from any channel, threaded onto ``ticket_id`` when the channel knows it."""

    channel: str
    from_email: str
    body_text: str
    from_name: str | None = None
    subject: str | None = None
    body_html: str | None = None
    external_id: str | None = None
    ticket_id: int | None = None
    attachments: Sequence[Attachment] = ()


@dataclass(frozen=True, slots=True)
class Received:
    ticket: Ticket
    message: Message
    created: bool
    duplicate: bool = False


def normalize_tag(raw: str) -> str:
    tag = "_".join(raw.strip().lower().split())
    if not tag or len(tag) > 80:
        raise ValidationFailedError(
            f"tag {raw!r} must be 1 to 80 characters", fields=[FieldProblem(("tags",), "bad tag")]
        )
    return tag


def normalize_tags(raw: Sequence[str]) -> list[str]:
    return sorted({normalize_tag(tag) for tag in raw})


def _check_choice(value: str, allowed: type[Any], name: str, problems: list[FieldProblem]) -> None:
    if value not in {member.value for member in allowed}:
        choices = ", ".join(member.value for member in allowed)
        problems.append(FieldProblem((name,), f"must be one of {choices}"))


def _clean_body(body_text: str, body_html: str | None) -> tuple[str, str | None]:
    safe_html = sanitize_html(body_html) if body_html else None
    text = body_text if body_text.strip() else (html_to_text(safe_html) if safe_html else "")
    return text, safe_html


# ---------------------------------------------------------------- creation


def _insert_message(session: Session, values: dict[str, Any], attachments: Sequence[Attachment]) -> Message:
    """A message with one direct INSERT; through the unit of work when it brings attachments
    (their rows and files follow the message's)."""
    if attachments:
        message = Message(**values)
        message.attachments = list(attachments)
        session.add(message)
        session.flush()
        return message
    message = insert_as_loaded(session, Message, values)
    set_committed_value(message, "attachments", [])
    return message


def create_ticket(session: Session, actor: Actor, new: NewTicket) -> Ticket:
    """Open a ticket with the requester's first message (the one path every channel takes)."""
    return _open_ticket(session, actor, new)[0]


def _open_ticket(session: Session, actor: Actor, new: NewTicket) -> tuple[Ticket, Message]:
    require(actor, Permission.TICKET_WRITE)
    problems: list[FieldProblem] = []
    subject = new.subject.strip()
    if not subject:
        problems.append(FieldProblem(("subject",), "must not be empty"))
    elif len(subject) > MAX_SUBJECT:
        problems.append(FieldProblem(("subject",), f"must be at most {MAX_SUBJECT} characters"))
    body_text, body_html = _clean_body(new.body_text, new.body_html)
    if not body_text.strip() and not new.attachments:
        problems.append(FieldProblem(("body",), "must not be empty"))
    if len(body_text) > MAX_BODY:
        problems.append(FieldProblem(("body",), f"must be at most {MAX_BODY} characters"))
    _check_choice(new.priority, Priority, "priority", problems)
    _check_choice(new.type, TicketType, "type", problems)
    _check_choice(new.channel, Channel, "channel", problems)
    if problems:
        raise InvalidTicketError("the ticket is not valid", fields=problems)
    custom_values = validate_custom_fields(session, new.custom_fields)
    tags = normalize_tags(new.tags)
    _check_group_and_assignee(session, actor, new.group_id, new.assignee_id)

    # The new requester's audit row and the ticket's go in one statement (one round trip on
    # PostgreSQL); nothing in between reads the trail.
    with audit.batched(session):
        requester = find_or_create_person(
            session, actor, new.requester_email, new.requester_name, language=new.language
        )
        now = clock.now()
        # Direct inserts (opsdesk.direct_insert): every channel's every new ticket comes through
        # here, and the unit of work costs several times these three INSERTs.
        ticket = insert_as_loaded(
            session,
            Ticket,
            {
                "subject": subject,
                "status": StatusCategory.NEW.value,
                "priority": new.priority,
                "type": new.type,
                "channel": new.channel,
                "category": new.category,
                "language": new.language or requester.language,
                "requester_id": requester.id,
                "account_id": requester.primary_account_id,
                "group_id": new.group_id,
                "assignee_id": new.assignee_id,
                "custom_fields": custom_values,
                "follow_up_of_id": new.follow_up_of_id,
                "reply_token": secrets.token_hex(8),
                "created_at": now,
                "updated_at": now,
                "status_changed_at": now,
                "last_customer_message_at": now,
                "customer_message_count": 1,
            },
            requester=requester,  # keeps the loaded person: the answer needs it, no second query
        )
        set_committed_value(
            ticket,
            "tag_rows",
            insert_all_as_loaded(session, TicketTag, [{"ticket_id": ticket.id, "tag": tag} for tag in tags]),
        )
        message_values = {
            "ticket_id": ticket.id,
            "author_kind": AuthorKind.CUSTOMER.value,
            "author_person_id": requester.id,
            "is_public": True,
            "body_text": body_text,
            "body_html": body_html,
            "channel": new.channel,
            "external_id": new.external_message_id,
            "created_at": now,
        }
        message = _insert_message(session, message_values, new.attachments)
        audit.record(
            session,
            actor,
            entity_type="ticket",
            entity_id=ticket.id,
            action="created",
            new={
                "subject": subject,
                "status": ticket.status,
                "priority": ticket.priority,
                "channel": ticket.channel,
                "tags": tags,
                "requester": requester.primary_email,
            },
            ticket_id=ticket.id,
        )
    bus.publish(session, TicketCreated(ticket_id=ticket.id, channel=ticket.channel, via=actor.via))
    return ticket, message


# Built once (every inbound message): the duplicate check, and the ticket a reply threads to
# without its joined relationships (loaded if a reaction asks for them).
_MESSAGE_BY_EXTERNAL_ID = select(Message).where(Message.external_id == bindparam("external_id"))
_BARE_TICKET = (
    lazyload(Ticket.requester),
    lazyload(Ticket.account),
    lazyload(Ticket.assignee),
    lazyload(Ticket.group),
    lazyload(Ticket.custom_status),
    lazyload(Ticket.tag_rows),
)


def receive(session: Session, actor: Actor, incoming: IncomingMessage) -> Received:
    """A customer's message from any channel: a new ticket, or a message on the one it threads to.

    Idempotent by ``external_id`` (an email's Message-ID, a Slack event id): a repeat returns the
    message stored the first time.
    """
    if incoming.external_id:
        existing = session.scalars(_MESSAGE_BY_EXTERNAL_ID, {"external_id": incoming.external_id}).first()
        if existing is not None:
            return Received(
                session.get_one(Ticket, existing.ticket_id), existing, created=False, duplicate=True
            )
    target: Ticket | None = (
        session.get(Ticket, incoming.ticket_id, options=_BARE_TICKET) if incoming.ticket_id else None
    )
    # Follow merges to the surviving ticket.
    hops = 0
    while target is not None and target.merged_into_id is not None and hops < 10:
        target = session.get(Ticket, target.merged_into_id, options=_BARE_TICKET)
        hops += 1
    if target is not None and target.status != StatusCategory.CLOSED.value:
        person = find_or_create_person(session, actor, incoming.from_email, incoming.from_name)
        message = add_message(
            session,
            actor,
            target,
            body_text=incoming.body_text,
            body_html=incoming.body_html,
            public=True,
            author_person=person,
            channel=incoming.channel,
            external_id=incoming.external_id,
            attachments=incoming.attachments,
        )
        return Received(target, message, created=False)
    subject = (incoming.subject or "").strip() or (
        incoming.body_text.strip().splitlines() or ["(no subject)"]
    )[0]
    ticket, first = _open_ticket(
        session,
        actor,
        NewTicket(
            subject=subject[:MAX_SUBJECT],
            body_text=incoming.body_text,
            body_html=incoming.body_html,
            requester_email=incoming.from_email,
            requester_name=incoming.from_name,
            channel=incoming.channel,
            external_message_id=incoming.external_id,
            follow_up_of_id=target.id if target is not None else None,
            attachments=incoming.attachments,
        ),
    )
    return Received(ticket, first, created=True)


def _check_group_and_assignee(
    session: Session,
    actor: Actor,
    group_id: int | None,
    assignee_id: int | None,
    *,
    ticket_group_id: int | None = None,
) -> None:
    """A group the actor may use and an assignee who may take the ticket.

    ``group_id`` is a group being set (checked against the actor's own scope); ``ticket_group_id``
    is the group the ticket keeps when only the assignee changes: a contractor must belong to it.
    """
    problems: list[FieldProblem] = []
    assignee_group_id = group_id if group_id is not None else ticket_group_id
    if group_id is not None:
        if session.get(Group, group_id) is None:
            problems.append(FieldProblem(("group_id",), f"group {group_id} does not exist"))
        elif is_group_scoped(actor) and actor.user is not None and group_id not in actor.user.group_ids:
            problems.append(FieldProblem(("group_id",), "you may only use your own groups"))
    if assignee_id is not None:
        assignee = session.get(User, assignee_id)
        if assignee is None or not assignee.is_active:
            problems.append(
                FieldProblem(("assignee_id",), f"user {assignee_id} is not an active staff member")
            )
        elif assignee.role == "viewer":
            problems.append(FieldProblem(("assignee_id",), "viewers cannot be assigned tickets"))
        elif (
            assignee_group_id is not None
            and assignee.role == "contractor"
            and assignee_group_id not in assignee.group_ids
        ):
            problems.append(
                FieldProblem(("assignee_id",), "a contractor can only take tickets of their groups")
            )
    if problems:
        raise InvalidTicketError("the assignment is not valid", fields=problems)


# ---------------------------------------------------------------- messages


def add_message(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    *,
    body_text: str,
    body_html: str | None = None,
    public: bool = True,
    author_person: Person | None = None,
    status: str | None = None,
    channel: str | None = None,
    external_id: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> Message:
    """A staff reply or note (actor is staff), a customer message (``author_person``) or a
    system note (neither). Applies the status rules of the module docstring."""
    text, safe_html = _clean_body(body_text, body_html)
    if not text.strip() and not attachments:
        raise InvalidTicketError(
            "the message is empty", fields=[FieldProblem(("body",), "must not be empty")]
        )
    if len(text) > MAX_BODY:
        raise InvalidTicketError("the message is too long", fields=[FieldProblem(("body",), "too long")])
    if ticket.status == StatusCategory.CLOSED.value:
        raise TicketClosedError(f"ticket {ticket.id} is closed; write a follow-up ticket instead")
    now = clock.now()
    changes: dict[str, tuple[Any, Any]] = {}
    if author_person is not None:
        author_kind = AuthorKind.CUSTOMER
        ticket.customer_message_count = Ticket.customer_message_count + 1
        ticket.last_customer_message_at = now
        if ticket.status in (StatusCategory.SOLVED.value, StatusCategory.PENDING.value):
            changes.update(_set_status(ticket, StatusCategory.OPEN.value, None, now))
    elif actor.user is not None:
        author_kind = AuthorKind.STAFF
        require(actor, Permission.TICKET_REPLY)
        if public:
            if ticket.first_reply_at is None:
                ticket.first_reply_at = now
            ticket.last_staff_reply_at = now
            ticket.staff_public_reply_count = Ticket.staff_public_reply_count + 1
        if status is None and public and ticket.status == StatusCategory.NEW.value:
            status = StatusCategory.OPEN.value
    else:
        author_kind = AuthorKind.SYSTEM
    if status is not None:
        category, custom_id = resolve_status(session, status)
        if category == StatusCategory.SOLVED.value:
            _ensure_solvable(session, ticket)
        changes.update(_set_status(ticket, category, custom_id, now))
    # Before the message's INSERT (which flushes the ticket's pending changes): one UPDATE.
    ticket.updated_at = now
    message_values = {
        "ticket_id": ticket.id,
        "author_kind": author_kind.value,
        "author_user_id": actor.user_id if author_kind is AuthorKind.STAFF else None,
        "author_person_id": author_person.id if author_person is not None else None,
        "is_public": public,
        "body_text": text,
        "body_html": safe_html,
        "channel": channel or actor.via,
        "external_id": external_id,
        "created_at": now,
    }
    message = _insert_message(session, message_values, attachments)
    session.flush()
    audit.record(
        session,
        actor
        if author_person is None
        else Actor.customer(author_person.name, author_person.id, via=channel or actor.via),
        entity_type="message",
        entity_id=message.id,
        action="reply_added" if public else "note_added",
        new={"author": author_kind.value, "public": public},
        ticket_id=ticket.id,
    )
    if changes:
        audit.record_changes(
            session, actor, entity_type="ticket", entity_id=ticket.id, changes=changes, ticket_id=ticket.id
        )
    bus.publish(
        session,
        MessageAdded(
            ticket_id=ticket.id,
            message_id=message.id,
            author_kind=author_kind.value,
            is_public=public,
            via=actor.via,
        ),
    )
    if changes:
        bus.publish(session, TicketUpdated(ticket_id=ticket.id, changes=changes, via=actor.via))
    return message


# ---------------------------------------------------------------- status


def resolve_status(session: Session, value: str) -> tuple[str, int | None]:
    """A category name, or the name of an admin's status: (category, custom status id)."""
    if value in {member.value for member in StatusCategory}:
        return value, None
    definition = session.scalars(
        select(TicketStatusDefinition).where(
            TicketStatusDefinition.name == value, TicketStatusDefinition.is_active.is_(True)
        )
    ).first()
    if definition is None:
        allowed = ", ".join(member.value for member in StatusCategory)
        raise InvalidTicketError(
            f"unknown status {value!r}",
            fields=[FieldProblem(("status",), f"must be one of {allowed} or an admin-defined status")],
        )
    return definition.category, definition.id


def _ensure_solvable(session: Session, ticket: Ticket) -> None:
    missing = missing_required(session, ticket.custom_fields or {})
    if missing:
        raise InvalidTicketError(
            "required fields must be filled before solving",
            fields=[FieldProblem(("custom_fields", key), "required to solve") for key in missing],
        )


def _set_status(
    ticket: Ticket, category: str, custom_id: int | None, now: datetime
) -> dict[str, tuple[Any, Any]]:
    old = ticket.status
    if old == category and ticket.custom_status_id == custom_id:
        return {}
    if old == StatusCategory.CLOSED.value:
        raise TicketClosedError(f"ticket {ticket.id} is closed")
    if category == StatusCategory.CLOSED.value and old != StatusCategory.SOLVED.value:
        raise InvalidTicketError(
            "only solved tickets can be closed", fields=[FieldProblem(("status",), "solve the ticket first")]
        )
    changes: dict[str, tuple[Any, Any]] = {}
    if old != category:
        changes["status"] = (old, category)
        ticket.status = category
        ticket.status_changed_at = now
        if category == StatusCategory.SOLVED.value:
            ticket.solved_at = now
            if ticket.first_solved_at is None:
                ticket.first_solved_at = now
        elif category == StatusCategory.CLOSED.value:
            ticket.closed_at = now
        elif old == StatusCategory.SOLVED.value and category in UNSOLVED_STATUSES:
            ticket.reopened_count = Ticket.reopened_count + 1
    if ticket.custom_status_id != custom_id:
        changes["custom_status_id"] = (ticket.custom_status_id, custom_id)
        ticket.custom_status_id = custom_id
    return changes


# ---------------------------------------------------------------- updates

UPDATABLE_FIELDS = frozenset(
    {
        "subject",
        "status",
        "priority",
        "type",
        "category",
        "assignee_id",
        "group_id",
        "account_id",
        "language",
        "tags",
        "add_tags",
        "remove_tags",
        "custom_fields",
    }
)


def update_ticket(
    session: Session, actor: Actor, ticket: Ticket, values: Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """Change fields of a ticket; returns what changed. Everything is validated first, so a bad
    value changes nothing."""
    require(actor, Permission.TICKET_WRITE)
    unknown = set(values) - UPDATABLE_FIELDS
    if unknown:
        raise InvalidTicketError(
            "unknown fields",
            fields=[FieldProblem((name,), "not a field that can be changed") for name in sorted(unknown)],
        )
    if ticket.status == StatusCategory.CLOSED.value:
        raise TicketClosedError(f"ticket {ticket.id} is closed and cannot be changed")
    problems: list[FieldProblem] = []
    if "subject" in values:
        subject = str(values["subject"] or "").strip()
        if not subject or len(subject) > MAX_SUBJECT:
            problems.append(FieldProblem(("subject",), f"must be 1 to {MAX_SUBJECT} characters"))
    if "priority" in values:
        _check_choice(str(values["priority"]), Priority, "priority", problems)
    if "type" in values:
        _check_choice(str(values["type"]), TicketType, "type", problems)
    if (
        "account_id" in values
        and values["account_id"] is not None
        and session.get(Account, values["account_id"]) is None
    ):
        problems.append(FieldProblem(("account_id",), f"account {values['account_id']} does not exist"))
    if problems:
        raise InvalidTicketError("the change is not valid", fields=problems)
    group_id = values.get("group_id", ticket.group_id)
    assignee_id = values.get("assignee_id", ticket.assignee_id)
    if "group_id" in values or "assignee_id" in values:
        _check_group_and_assignee(
            session,
            actor,
            group_id if "group_id" in values else None,
            assignee_id if "assignee_id" in values else None,
            ticket_group_id=group_id,
        )
    status_target: tuple[str, int | None] | None = None
    if "status" in values:
        status_target = resolve_status(session, str(values["status"]))
    custom_values: dict[str, Any] | None = None
    if "custom_fields" in values:
        custom_values = {
            **(ticket.custom_fields or {}),
            **validate_custom_fields(session, values["custom_fields"] or {}),
        }
    new_tags: list[str] | None = None
    if "tags" in values or "add_tags" in values or "remove_tags" in values:
        current = set(ticket.tags)
        if "tags" in values:
            current = set(normalize_tags(values["tags"] or []))
        current |= set(normalize_tags(values.get("add_tags") or []))
        current -= set(normalize_tags(values.get("remove_tags") or []))
        new_tags = sorted(current)

    now = clock.now()
    changes: dict[str, tuple[Any, Any]] = {}
    for name in (
        "subject",
        "priority",
        "type",
        "category",
        "assignee_id",
        "group_id",
        "account_id",
        "language",
    ):
        if name in values:
            new_value = values[name].strip() if name == "subject" else values[name]
            old_value = getattr(ticket, name)
            if old_value != new_value:
                changes[name] = (old_value, new_value)
                setattr(ticket, name, new_value)
    if custom_values is not None and custom_values != (ticket.custom_fields or {}):
        changes["custom_fields"] = (ticket.custom_fields, custom_values)
        ticket.custom_fields = custom_values
    if new_tags is not None and new_tags != ticket.tags:
        changes["tags"] = (ticket.tags, new_tags)
        ticket.tag_rows = [row for row in ticket.tag_rows if row.tag in new_tags] + [
            TicketTag(tag=tag) for tag in new_tags if tag not in ticket.tags
        ]
    if status_target is not None:
        if status_target[0] == StatusCategory.SOLVED.value:
            _ensure_solvable(session, ticket)
        changes.update(_set_status(ticket, status_target[0], status_target[1], now))
    if not changes:
        return {}
    ticket.updated_at = now
    session.flush()
    audit.record_changes(
        session, actor, entity_type="ticket", entity_id=ticket.id, changes=changes, ticket_id=ticket.id
    )
    bus.publish(session, TicketUpdated(ticket_id=ticket.id, changes=changes, via=actor.via))
    return changes


# ---------------------------------------------------------------- merge and close


def merge_tickets(session: Session, actor: Actor, source: Ticket, target: Ticket) -> Ticket:
    """Move the source's messages onto the target; close the source with a link to it."""
    require(actor, Permission.TICKET_MERGE)
    if source.id == target.id:
        raise MergeRefusedError("a ticket cannot be merged into itself")
    if StatusCategory.CLOSED.value in (source.status, target.status):
        raise MergeRefusedError("closed tickets cannot be merged")
    now = clock.now()
    session.execute(update(Message).where(Message.ticket_id == source.id).values(ticket_id=target.id))
    for note_ticket, text in (
        (target, f"Ticket #{source.id} ({source.subject}) was merged into this ticket."),
        (source, f"This ticket was merged into #{target.id}."),
    ):
        session.add(
            Message(
                ticket_id=note_ticket.id,
                author_kind=AuthorKind.SYSTEM.value,
                is_public=False,
                body_text=text,
                channel=actor.via,
                created_at=now,
            )
        )
    old_status = source.status
    source.status = StatusCategory.CLOSED.value
    source.custom_status_id = None
    source.closed_at = now
    source.status_changed_at = now
    source.merged_into_id = target.id
    source.updated_at = now
    target.updated_at = now
    session.flush()
    audit.record_changes(
        session,
        actor,
        entity_type="ticket",
        entity_id=source.id,
        ticket_id=source.id,
        changes={"status": (old_status, StatusCategory.CLOSED.value), "merged_into_id": (None, target.id)},
    )
    audit.record(
        session,
        actor,
        entity_type="ticket",
        entity_id=target.id,
        action="merged_in",
        new={"source_ticket_id": source.id},
        ticket_id=target.id,
    )
    session.expire(target)
    bus.publish(session, TicketMerged(source_ticket_id=source.id, target_ticket_id=target.id))
    return target


def close_solved_tickets(session: Session, actor: Actor, *, older_than: timedelta = CLOSE_AFTER) -> int:
    """Close every ticket solved for longer than ``older_than``; returns how many closed."""
    now = clock.now()
    cutoff = now - older_than
    ids = list(
        session.scalars(
            select(Ticket.id).where(Ticket.status == StatusCategory.SOLVED.value, Ticket.solved_at <= cutoff)
        )
    )
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        session.execute(
            update(Ticket)
            .where(Ticket.id.in_(chunk), Ticket.status == StatusCategory.SOLVED.value)
            .values(
                status=StatusCategory.CLOSED.value,
                closed_at=now,
                status_changed_at=now,
                updated_at=now,
                custom_status_id=None,
            )
            .execution_options(synchronize_session=False)
        )
        for ticket_id in chunk:
            audit.record(
                session,
                actor,
                entity_type="ticket",
                entity_id=ticket_id,
                action="updated",
                field="status",
                old=StatusCategory.SOLVED.value,
                new=StatusCategory.CLOSED.value,
                ticket_id=ticket_id,
                reason=f"solved for more than {older_than.days} days",
            )
    session.flush()
    return len(ids)


def group_member_ids(session: Session, group_id: int) -> list[int]:
    return list(session.scalars(select(GroupMembership.user_id).where(GroupMembership.group_id == group_id)))
