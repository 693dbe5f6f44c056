"""Rule actions: validation, and applying them to a ticket as the rule.

Field changes go through :func:`opsdesk.tickets.service.update_ticket` with ``Actor.rule(name)``,
so the audit trail shows the rule's name; notifications and webhooks are outbox jobs written in
the same transaction (``automation.email``, and ``http.post`` for Slack, webhooks and paging).

Actions: ``set_field`` (status, priority, type, category, group_id, assignee_id), ``add_tags``,
``remove_tags``, ``assign`` (user_id and/or group_id), ``notify_email`` (to: assignee, group or
an address; subject and body templates), ``notify_slack`` (webhook_url, text template),
``webhook`` (url: the ticket as JSON), ``apply_macro`` (macro_id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock, outbox
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import GroupMembership, User
from opsdesk.automation.models import Macro
from opsdesk.automation.templating import TemplateProblem, check_template, render, template_context
from opsdesk.errors import FieldProblem
from opsdesk.tickets.models import Ticket
from opsdesk.tickets.service import update_ticket

SETTABLE_FIELDS = frozenset({"status", "priority", "type", "category", "group_id", "assignee_id"})
ACTION_TYPES = frozenset(
    {
        "set_field",
        "add_tags",
        "remove_tags",
        "assign",
        "notify_email",
        "notify_slack",
        "webhook",
        "apply_macro",
    }
)
EMAIL_JOB = "automation.email"


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) <= 500


def validate_actions(
    session: Session, actions: Sequence[Any], *, allow_macro: bool = True
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if not isinstance(actions, list) or not actions:
        return [FieldProblem(("actions",), "give at least one action")]
    for index, action in enumerate(actions):
        where: tuple[str | int, ...] = ("actions", index)
        if not isinstance(action, Mapping) or action.get("type") not in ACTION_TYPES:
            problems.append(
                FieldProblem(where, f'an action is {{"type": one of {sorted(ACTION_TYPES)}, ...}}')
            )
            continue
        kind = action["type"]
        if kind == "set_field" and action.get("field") not in SETTABLE_FIELDS:
            problems.append(FieldProblem((*where, "field"), f"use one of {sorted(SETTABLE_FIELDS)}"))
        elif kind in ("add_tags", "remove_tags") and not (
            isinstance(action.get("tags"), list)
            and action["tags"]
            and all(isinstance(tag, str) for tag in action["tags"])
        ):
            problems.append(FieldProblem((*where, "tags"), "a non-empty list of tags"))
        elif kind == "assign" and action.get("user_id") is None and action.get("group_id") is None:
            problems.append(FieldProblem(where, "give user_id or group_id"))
        elif kind == "notify_email":
            to = str(action.get("to", ""))
            if to not in ("assignee", "group") and "@" not in to:
                problems.append(FieldProblem((*where, "to"), "assignee, group or an email address"))
            for key in ("subject", "body"):
                try:
                    check_template(str(action.get(key, "")))
                except TemplateProblem as error:
                    problems.append(FieldProblem((*where, key), str(error)))
        elif kind == "notify_slack":
            if not _is_url(action.get("webhook_url")):
                problems.append(
                    FieldProblem((*where, "webhook_url"), "an http(s) URL of a Slack incoming webhook")
                )
            try:
                check_template(str(action.get("text", "")))
            except TemplateProblem as error:
                problems.append(FieldProblem((*where, "text"), str(error)))
        elif kind == "webhook" and not _is_url(action.get("url")):
            problems.append(FieldProblem((*where, "url"), "an http(s) URL"))
        elif kind == "apply_macro":
            if not allow_macro:
                problems.append(FieldProblem(where, "a macro cannot apply another macro"))
            elif session.get(Macro, action.get("macro_id")) is None:
                problems.append(
                    FieldProblem((*where, "macro_id"), f"macro {action.get('macro_id')!r} does not exist")
                )
    return problems


def field_changes(actions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ticket changes the actions make, as one ``update_ticket`` change set."""
    changes: dict[str, Any] = {}
    add: list[str] = []
    remove: list[str] = []
    for action in actions:
        kind = action["type"]
        if kind == "set_field":
            changes[str(action["field"])] = action.get("value")
        elif kind == "add_tags":
            add.extend(action["tags"])
        elif kind == "remove_tags":
            remove.extend(action["tags"])
        elif kind == "assign":
            if action.get("group_id") is not None:
                changes["group_id"] = action["group_id"]
            if action.get("user_id") is not None:
                changes["assignee_id"] = action["user_id"]
    if add:
        changes["add_tags"] = add
    if remove:
        changes["remove_tags"] = remove
    return changes


def staff_addresses(session: Session, ticket: Ticket, to: str) -> list[str]:
    if to == "assignee":
        return [ticket.assignee.email] if ticket.assignee is not None and ticket.assignee.is_active else []
    if to == "group":
        if ticket.group_id is None:
            return []
        return list(
            session.scalars(
                select(User.email)
                .join(GroupMembership, GroupMembership.user_id == User.id)
                .where(GroupMembership.group_id == ticket.group_id, User.is_active.is_(True))
                .order_by(User.email)
            )
        )
    return [to]


def queue_email(session: Session, to: str, subject: str, text: str, key: str) -> None:
    outbox.enqueue(session, EMAIL_JOB, {"to": to, "subject": subject, "text": text}, idempotency_key=key)


def apply_actions(
    session: Session, ticket: Ticket, actions: Sequence[Mapping[str, Any]], actor: Actor, *, firing_key: str
) -> dict[str, tuple[Any, Any]]:
    """Apply a rule's actions to the ticket as ``actor``; ``firing_key`` makes the outbox rows of
    this firing idempotent. Returns the field changes made."""
    changes = field_changes(actions)
    made = update_ticket(session, actor, ticket, changes) if changes else {}
    context = template_context(ticket, None)
    for index, action in enumerate(actions):
        kind = action["type"]
        key = f"{firing_key}:{index}"
        if kind == "notify_email":
            subject = (
                render(str(action.get("subject", "")), context) or f"Ticket #{ticket.id}: {ticket.subject}"
            )
            body = render(str(action.get("body", "")), context)
            for number, address in enumerate(staff_addresses(session, ticket, str(action["to"]))):
                queue_email(session, address, subject, body, f"{key}:{number}")
        elif kind == "notify_slack":
            text = render(str(action.get("text", "")), context) or f"Ticket #{ticket.id}: {ticket.subject}"
            outbox.enqueue(
                session,
                "http.post",
                {"url": action["webhook_url"], "json": {"text": text}},
                idempotency_key=key,
            )
        elif kind == "webhook":
            document = {
                "event": "rule_fired",
                "rule": actor.name,
                "sent_at": clock.now().isoformat(),
                "ticket": {
                    "id": ticket.id,
                    "subject": ticket.subject,
                    "status": ticket.status,
                    "priority": ticket.priority,
                    "tags": list(ticket.tags),
                    "group_id": ticket.group_id,
                    "assignee_id": ticket.assignee_id,
                },
            }
            outbox.enqueue(
                session, "http.post", {"url": action["url"], "json": document}, idempotency_key=key
            )
        elif kind == "apply_macro":
            from opsdesk.automation.macros import apply_macro_as

            macro = session.get(Macro, action["macro_id"])
            if macro is not None:
                apply_macro_as(session, actor, ticket, macro)
    audit.record(
        session,
        actor,
        entity_type="ticket",
        entity_id=ticket.id,
        action="rule_fired",
        new={"rule": actor.name, "actions": [action["type"] for action in actions]},
        ticket_id=ticket.id,
    )
    return made
