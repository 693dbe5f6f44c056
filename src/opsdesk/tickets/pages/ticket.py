"""The ticket page: the conversation (public replies and internal notes apart), the reply/note
form with a status choice, the fields form, and the audit trail.

Both forms post with the session's CSRF token. A refused change is shown on the page with a
readable message and the form as it was typed; it runs in a savepoint that is rolled back, so it
changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth import service as auth_service
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission
from opsdesk.errors import DomainError, FieldProblem, ValidationFailedError
from opsdesk.tickets import service as tickets
from opsdesk.tickets.enums import FieldType, Priority, StatusCategory, TicketType
from opsdesk.tickets.models import CustomFieldDefinition, Ticket
from opsdesk.tickets.pages import display
from opsdesk.tickets.pages.rows import ViewLink, page_errors, sidebar
from opsdesk.tickets.service import attachments as attachment_service
from opsdesk.tickets.service import custom_fields as custom_fields_service
from opsdesk.tickets.service import directory, history, statuses
from opsdesk.tickets.service.accounts import may_see_payment
from opsdesk.web.auth import page_actor
from opsdesk.web.panels import PanelPlace, TicketPanel, collect_ticket_panels
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)
SETTABLE_STATUSES = ("new", "open", "pending", "on_hold", "solved")


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: str
    selected: bool = False


@dataclass(frozen=True, slots=True)
class AttachmentLink:
    name: str
    href: str
    size: str
    content_type: str


@dataclass(frozen=True, slots=True)
class MessageView:
    id: int
    anchor: str
    author_name: str
    author_kind: str
    is_public: bool
    kind_label: str
    css_class: str
    created: str
    created_iso: str
    body_text: str
    attachments: list[AttachmentLink]


@dataclass(frozen=True, slots=True)
class EventView:
    created: str
    created_iso: str
    actor_name: str
    via: str
    description: str
    old: str
    new: str
    has_values: bool


@dataclass(frozen=True, slots=True)
class CustomFieldInput:
    key: str
    label: str
    field_type: str
    value: str
    checked: bool
    options: list[Option]


@dataclass(frozen=True, slots=True)
class Fact:
    label: str
    value: str


@dataclass(slots=True)
class FormState:
    """What the user typed, shown again when a change is refused."""

    body: str = ""
    visibility: str = "public"
    reply_status: str = ""
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    message: str
    fields: list[str]


@dataclass(frozen=True, slots=True)
class TicketPageModel:
    id: int
    subject: str
    status: str
    status_label: str
    priority_label: str
    is_closed: bool
    may_reply: bool
    may_edit: bool
    requester_name: str
    requester_email: str
    requester_href: str
    account_name: str
    account_href: str
    account_facts: list[Fact]
    account_is_hot: bool
    facts: list[Fact]
    tags: list[str]
    messages: list[MessageView]
    events: list[EventView]
    reply_status_options: list[Option]
    status_options: list[Option]
    priority_options: list[Option]
    type_options: list[Option]
    group_options: list[Option]
    assignee_options: list[Option]
    tags_text: str
    custom_fields: list[CustomFieldInput]
    form: FormState
    problem: Problem | None
    views: list[ViewLink]
    main_panels: list[TicketPanel]
    side_panels: list[TicketPanel]


def _status_options(
    current: str, custom_names: list[tuple[str, str]], *, keep_label: str | None
) -> list[Option]:
    options = [Option("", keep_label)] if keep_label is not None else []
    options += [Option(value, display.status_label(value), value == current) for value in SETTABLE_STATUSES]
    options += [
        Option(name, f"{name} ({display.status_label(category)})", name == current)
        for name, category in custom_names
    ]
    return options


def _message_view(message: Any) -> MessageView:
    if message.author_kind == "staff":
        kind_label = "Public reply" if message.is_public else "Internal note"
        css_class = "reply" if message.is_public else "note"
    elif message.author_kind == "customer":
        kind_label, css_class = "Customer", "customer"
    else:
        kind_label, css_class = "System note", "system"
    return MessageView(
        id=message.id,
        anchor=f"message-{message.id}",
        author_name=message.author_name,
        author_kind=message.author_kind,
        is_public=message.is_public,
        kind_label=kind_label,
        css_class=css_class,
        created=display.instant(message.created_at),
        created_iso=display.iso(message.created_at),
        body_text=message.body_text,
        attachments=[
            AttachmentLink(
                name=attachment.filename,
                href=f"/api/v1/attachments/{attachment.id}",
                size=display.file_size(attachment.size_bytes),
                content_type=attachment.content_type,
            )
            for attachment in message.attachments
        ],
    )


def _event_view(event: Any, names: Mapping[str, Mapping[int, str]]) -> EventView:
    action = display.ACTION_LABELS.get(event.action, event.action.replace("_", " "))
    if event.field:
        action = f"{action} {display.FIELD_LABELS.get(event.field, event.field.replace('_', ' ')).lower()}"
    if event.entity_type not in ("ticket", "message"):
        # Another domain's row linked to the ticket (a refund, a subscription change): say what.
        action = f"{event.entity_type.replace('_', ' ')} {event.entity_id or ''}: {action}".replace(" :", ":")
    has_values = event.action in ("updated", "rated")
    return EventView(
        created=display.instant(event.created_at),
        created_iso=display.iso(event.created_at),
        actor_name=event.actor_name,
        via=event.via,
        description=action,
        old=display.audit_value(event.field, event.old_value, names) if has_values else "",
        new=display.audit_value(event.field, event.new_value, names) if has_values else "",
        has_values=has_values,
    )


def _custom_inputs(
    definitions: Mapping[str, CustomFieldDefinition], values: Mapping[str, Any], typed: Mapping[str, str]
) -> list[CustomFieldInput]:
    inputs = []
    for definition in sorted(definitions.values(), key=lambda item: (item.position, item.id)):
        form_key = f"cf_{definition.key}"
        stored = values.get(definition.key)
        shown = typed.get(form_key, "" if stored is None else str(stored))
        if definition.field_type == FieldType.CHECKBOX.value:
            checked = typed.get(form_key) == "on" if typed else stored is True
        else:
            checked = False
        inputs.append(
            CustomFieldInput(
                key=form_key,
                label=definition.label,
                field_type=definition.field_type,
                value=shown,
                checked=checked,
                options=[Option(option, option, option == shown) for option in definition.options],
            )
        )
    return inputs


def build_ticket_page(
    session: Session,
    actor: Actor,
    ticket: Ticket,
    *,
    form: FormState | None = None,
    problem: Problem | None = None,
) -> TicketPageModel:
    form = form or FormState()
    typed = form.values
    now = clock.now()
    may_edit = has_permission(actor, Permission.TICKET_WRITE)
    staff = directory.assignable_staff(session, actor) if may_edit else []
    groups = auth_service.list_groups(session, actor)
    custom_statuses = statuses.list_statuses(session, actor)
    names: dict[str, dict[int, str]] = {
        "assignee_id": {user.id: user.name for user in staff},
        "group_id": {group.id: group.name for group in groups},
        "custom_status_id": {status.id: status.name for status in custom_statuses},
    }
    if ticket.assignee is not None:
        names["assignee_id"].setdefault(ticket.assignee.id, ticket.assignee.name)
    current_status = ticket.custom_status.name if ticket.custom_status is not None else ticket.status
    custom_names = [(status.name, status.category) for status in custom_statuses]
    panels = collect_ticket_panels(session, actor, ticket)
    account = ticket.account
    account_facts: list[Fact] = []
    if account is not None:
        account_facts.append(Fact("Tier", display.TIER_LABELS.get(account.tier, account.tier)))
        if account.plan_name:
            account_facts.append(Fact("Plan", account.plan_name))
        if may_see_payment(actor):
            account_facts.append(Fact("MRR", display.money(account.mrr_amount_minor, account.currency)))
        if account.renewal_on is not None:
            account_facts.append(Fact("Renewal", account.renewal_on.isoformat()))
        if account.owner is not None:
            account_facts.append(Fact("Owner", account.owner.name))
    facts = [
        Fact("Created", display.instant(ticket.created_at)),
        Fact("Channel", ticket.channel.capitalize()),
        Fact("Category", (ticket.category or "—").replace("_", " ")),
        Fact("Group", ticket.group.name if ticket.group is not None else "—"),
        Fact("Assignee", ticket.assignee.name if ticket.assignee is not None else "Unassigned"),
        Fact(
            "First reply",
            display.duration((ticket.first_reply_at - ticket.created_at).total_seconds())
            if ticket.first_reply_at is not None
            else "not yet",
        ),
    ]
    if ticket.solved_at is not None:
        facts.append(
            Fact("Resolution", display.duration((ticket.solved_at - ticket.created_at).total_seconds()))
        )
    if ticket.reopened_count:
        facts.append(
            Fact("Reopened", "once" if ticket.reopened_count == 1 else f"{ticket.reopened_count} times")
        )
    if ticket.handle_seconds:
        facts.append(Fact("Handle time", display.duration(ticket.handle_seconds)))
    if ticket.satisfaction_score is not None:
        rating = f"{ticket.satisfaction_score}/5"
        if ticket.satisfaction_comment:
            rating += f" “{ticket.satisfaction_comment}”"
        facts.append(Fact("Satisfaction", rating))
    facts.append(Fact("Updated", display.ago(ticket.updated_at, now)))
    is_closed = ticket.status == StatusCategory.CLOSED.value
    return TicketPageModel(
        id=ticket.id,
        subject=ticket.subject,
        status=ticket.status,
        status_label=ticket.status_name,
        priority_label=display.PRIORITY_LABELS.get(ticket.priority, ticket.priority),
        is_closed=is_closed,
        may_reply=has_permission(actor, Permission.TICKET_REPLY) and not is_closed,
        may_edit=may_edit and not is_closed,
        requester_name=ticket.requester.name,
        requester_email=ticket.requester.primary_email or "",
        requester_href=f"/people/{ticket.requester_id}",
        account_name=account.name if account is not None else "",
        account_href=f"/accounts/{account.id}" if account is not None else "",
        account_facts=account_facts,
        account_is_hot=bool(account is not None and account.is_hot),
        facts=facts,
        tags=ticket.tags,
        messages=[_message_view(message) for message in history.list_messages(session, actor, ticket)],
        events=[_event_view(event, names) for event in history.list_events(session, actor, ticket)]
        if has_permission(actor, Permission.AUDIT_READ)
        else [],
        reply_status_options=_status_options(
            form.reply_status, custom_names, keep_label=f"Keep {ticket.status_name.lower()}"
        ),
        status_options=_status_options(typed.get("status", current_status), custom_names, keep_label=None),
        priority_options=[
            Option(
                p.value, display.PRIORITY_LABELS[p.value], p.value == typed.get("priority", ticket.priority)
            )
            for p in Priority
        ],
        type_options=[
            Option(t.value, t.value.capitalize(), t.value == typed.get("type", ticket.type))
            for t in TicketType
        ],
        group_options=[Option("", "No group", typed.get("group_id", str(ticket.group_id or "")) == "")]
        + [
            Option(
                str(group.id), group.name, str(group.id) == typed.get("group_id", str(ticket.group_id or ""))
            )
            for group in groups
        ],
        assignee_options=[
            Option("", "Unassigned", typed.get("assignee_id", str(ticket.assignee_id or "")) == "")
        ]
        + [
            Option(
                str(user.id),
                f"{user.name} ({user.role})",
                str(user.id) == typed.get("assignee_id", str(ticket.assignee_id or "")),
            )
            for user in staff
        ],
        tags_text=typed.get("tags", ", ".join(ticket.tags)),
        custom_fields=_custom_inputs(
            custom_fields_service.active_definitions(session), ticket.custom_fields or {}, typed
        ),
        form=form,
        problem=problem,
        views=sidebar(session, actor),
        main_panels=[panel for panel in panels if panel.place is PanelPlace.MAIN],
        side_panels=[panel for panel in panels if panel.place is PanelPlace.SIDE],
    )


def _problem(error: DomainError) -> Problem:
    return Problem(
        message=error.detail,
        fields=[f"{'.'.join(str(part) for part in item.location)}: {item.message}" for item in error.fields],
    )


def _refused_page(
    request: Request, session: Session, actor: Actor, ticket_id: int, form: FormState, error: DomainError
) -> HTMLResponse:
    ticket = tickets.access_ticket(session, actor, ticket_id)
    session.refresh(ticket)
    model = build_ticket_page(session, actor, ticket, form=form, problem=_problem(error))
    return render(
        request, "tickets/ticket.html", {"page": model, "views": model.views}, status_code=error.status
    )


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(
    request: Request,
    ticket_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    with page_errors():
        ticket = tickets.access_ticket(session, actor, ticket_id)
    model = build_ticket_page(session, actor, ticket)
    return render(request, "tickets/ticket.html", {"page": model, "views": model.views})


@router.post("/tickets/{ticket_id}/messages", response_model=None)
async def reply(
    request: Request,
    ticket_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    submitted = await request.form()
    form = FormState(
        body=str(submitted.get("body") or ""),
        visibility="note" if submitted.get("visibility") == "note" else "public",
        reply_status=str(submitted.get("status") or ""),
    )
    settings = request.app.state.settings
    store = attachment_service.AttachmentStore(settings.attachments_dir, settings.attachment_max_bytes)
    uploads = [
        attachment_service.Upload(
            filename=part.filename or "attachment",
            content_type=part.content_type or "application/octet-stream",
            data=await part.read(store.max_bytes + 1),
        )
        for part in submitted.getlist("attachments")
        if not isinstance(part, str) and part.filename
    ]
    with page_errors():
        ticket = tickets.access_ticket(session, actor, ticket_id, for_update=True)
    try:
        with session.begin_nested():
            message = tickets.add_message(
                session,
                actor,
                ticket,
                body_text=form.body,
                public=form.visibility == "public",
                status=form.reply_status or None,
                attachments=attachment_service.store_uploads(store, uploads),
            )
    except DomainError as error:
        return _refused_page(request, session, actor, ticket_id, form, error)
    return RedirectResponse(f"/tickets/{ticket_id}#message-{message.id}", status_code=303)


def _changed_values(session: Session, ticket: Ticket, submitted: Mapping[str, str]) -> dict[str, Any]:
    """The fields the form changes, parsed; unchanged fields are left out so they are not
    validated or audited again."""
    values: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    current_status = ticket.custom_status.name if ticket.custom_status is not None else ticket.status
    if submitted.get("status") and submitted["status"] != current_status:
        values["status"] = submitted["status"]
    for name in ("priority", "type"):
        if submitted.get(name) and submitted[name] != getattr(ticket, name):
            values[name] = submitted[name]
    for name in ("group_id", "assignee_id"):
        if name not in submitted:
            continue
        raw = submitted[name].strip()
        if raw and not raw.isdigit():
            problems.append(FieldProblem((name,), "choose from the list"))
            continue
        chosen = int(raw) if raw else None
        if chosen != getattr(ticket, name):
            values[name] = chosen
    if "tags" in submitted:
        tags = [part for part in submitted["tags"].replace(",", " ").split() if part]
        if sorted({tag.lower() for tag in tags}) != ticket.tags:
            values["tags"] = tags
    custom: dict[str, Any] = {}
    current = ticket.custom_fields or {}
    for key, definition in custom_fields_service.active_definitions(session).items():
        form_key = f"cf_{key}"
        raw_value = submitted.get(form_key, "").strip()
        parsed: Any
        if definition.field_type == FieldType.CHECKBOX.value:
            parsed = form_key in submitted
            if not parsed and current.get(key) is None:
                continue
        elif not raw_value:
            parsed = None
        elif definition.field_type == FieldType.NUMBER.value:
            try:
                number = float(raw_value)
            except ValueError:
                problems.append(FieldProblem(("custom_fields", key), f"{definition.label} must be a number"))
                continue
            parsed = int(number) if number.is_integer() else number
        else:
            parsed = raw_value
        if parsed != current.get(key):
            custom[key] = parsed
    if custom:
        values["custom_fields"] = custom
    if problems:
        raise ValidationFailedError("some fields are not valid", fields=problems)
    return values


@router.post("/tickets/{ticket_id}/fields", response_model=None)
async def update_fields(
    request: Request,
    ticket_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    submitted = {key: str(value) for key, value in (await request.form()).items() if key != "csrf_token"}
    form = FormState(values=submitted)
    with page_errors():
        ticket = tickets.access_ticket(session, actor, ticket_id, for_update=True)
    try:
        with session.begin_nested():
            values = _changed_values(session, ticket, submitted)
            if values:
                tickets.update_ticket(session, actor, ticket, values)
    except DomainError as error:
        return _refused_page(request, session, actor, ticket_id, form, error)
    return RedirectResponse(f"/tickets/{ticket_id}", status_code=303)
