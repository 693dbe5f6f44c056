"""Tickets, their messages and audit trail, bulk changes and merges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.sla.queries import SlaItem, sla_for_tickets, sla_of_new_ticket
from opsdesk.sla.schemas import SlaItemOut
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Ticket
from opsdesk.tickets.schemas import (
    BulkFieldOut,
    BulkRefusalOut,
    BulkResultOut,
    BulkUpdate,
    EventOut,
    MergeIn,
    MessageCreate,
    MessageOut,
    TicketCreate,
    TicketList,
    TicketOut,
    TicketPatch,
)
from opsdesk.tickets.service import attachments, bulk, history, views
from opsdesk.tickets.service.access import reload_ticket
from opsdesk.web import write_lane
from opsdesk.web.auth import ApiActor, ApiCredentials
from opsdesk.web.sessions import DbSession

router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"])


def _ticket_outs(session: Session, rows: Sequence[Ticket]) -> list[TicketOut]:
    """Ticket JSON with the fields other domains provide: ``"sla"`` (one query for the page)."""
    sla = sla_for_tickets(session, [ticket.id for ticket in rows])
    return [_with_sla(TicketOut.of(ticket), sla.get(ticket.id, [])) for ticket in rows]


def _with_sla(answer: TicketOut, sla: Sequence[SlaItem]) -> TicketOut:
    return answer.model_copy(update={"sla": [SlaItemOut.of(item).model_dump(mode="json") for item in sla]})


def _ticket_out(session: Session, ticket: Ticket) -> TicketOut:
    return _ticket_outs(session, [ticket])[0]


def _changed(session: Session, ticket: Ticket) -> Response:
    """A change's ``200``: the ticket as it is now (its reactions may have changed it further)."""
    return write_lane.ok(_ticket_out(session, reload_ticket(session, ticket)))


ListParam = Annotated[list[str] | None, Query()]


@router.post("", status_code=201, response_model=TicketOut)
async def create_ticket(body: TicketCreate, request: Request, credentials: ApiCredentials) -> Response:
    """Open a ticket with the requester's first message."""
    return await write_lane.run(
        request, credentials, lambda session, actor: _create_ticket(session, actor, body)
    )


def _create_ticket(session: Session, actor: Actor, body: TicketCreate) -> Response:
    ticket = tickets.create_ticket(
        session,
        actor,
        tickets.NewTicket(
            subject=body.subject,
            body_text=body.body,
            body_html=body.body_html,
            requester_email=body.requester.email,
            requester_name=body.requester.name,
            priority=body.priority.value,
            type=body.type.value,
            channel=body.channel.value,
            tags=body.tags,
            custom_fields=body.custom_fields,
            group_id=body.group_id,
            assignee_id=body.assignee_id,
            category=body.category,
            language=body.language,
        ),
    )
    answer = _with_sla(TicketOut.of(ticket), sla_of_new_ticket(session, ticket.id))
    return write_lane.created(answer, f"/api/v1/tickets/{ticket.id}")


@router.get("")
def list_tickets(
    actor: ApiActor,
    session: DbSession,
    status: ListParam = None,
    assignee: Annotated[str | None, Query(description='a user id, "me" or "none"')] = None,
    group: Annotated[str | None, Query(description='a group id or "none"')] = None,
    tag: ListParam = None,
    priority: ListParam = None,
    channel: ListParam = None,
    tier: ListParam = None,
    q: Annotated[str | None, Query(description="keywords; every word must occur")] = None,
    solved_within_days: int | None = None,
    sort: str = views.DEFAULT_SORT,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=views.MAX_PAGE)] = 50,
) -> TicketList:
    """Tickets matching every given filter (repeat a list filter to mean "any of"), a page at a
    time: pass ``next_cursor`` back as ``cursor`` for the next page."""
    ticket_filter = views.parse_filter(
        {
            "status": status,
            "assignee": assignee,
            "group": group,
            "tag": tag,
            "priority": priority,
            "channel": channel,
            "tier": tier,
            "q": q,
            "solved_within_days": solved_within_days,
        }
    )
    page = views.list_tickets(session, actor, ticket_filter, sort=sort, cursor=cursor, limit=limit)
    return TicketList(items=_ticket_outs(session, page.items), next_cursor=page.next_cursor)


@router.post("/bulk")
def bulk_update(body: BulkUpdate, actor: ApiActor, session: DbSession) -> BulkResultOut:
    """Apply the same change to up to 100 tickets, each through the rules of a single change.

    A bad request (no ids, unknown priority, a group that does not exist …) answers 422 and
    changes nothing. Otherwise each ticket is changed or refused on its own and the answer lists
    the refused ones with the reason; with ``"atomic": true`` any refusal answers 409 and nothing
    is changed."""
    result = bulk.bulk_update(session, actor, body.ids, body.changes.changes(), atomic=body.atomic)
    return BulkResultOut(
        updated_ids=result.updated_ids,
        unchanged_ids=result.unchanged_ids,
        refused=[
            BulkRefusalOut(
                id=item.ticket_id,
                code=item.code,
                status=item.status,
                detail=item.detail,
                errors=[
                    BulkFieldOut(
                        field=".".join(str(part) for part in problem.location), message=problem.message
                    )
                    for problem in item.fields
                ],
            )
            for item in result.refused
        ],
    )


@router.get("/{ticket_id}")
def get_ticket(ticket_id: int, actor: ApiActor, session: DbSession) -> TicketOut:
    return _ticket_out(session, tickets.access_ticket(session, actor, ticket_id))


@router.patch("/{ticket_id}", response_model=TicketOut)
async def update_ticket(
    ticket_id: int, body: TicketPatch, request: Request, credentials: ApiCredentials
) -> Response:
    """Change a ticket's fields (in the write lane: agents do this all day)."""

    def update(session: Session, actor: Actor) -> Response:
        ticket = tickets.access_ticket(session, actor, ticket_id, for_update=True)
        tickets.update_ticket(session, actor, ticket, body.changes())
        return _changed(session, ticket)

    return await write_lane.run(request, credentials, update)


@router.post("/{ticket_id}/merge", response_model=TicketOut)
async def merge_ticket(
    ticket_id: int, body: MergeIn, request: Request, credentials: ApiCredentials
) -> Response:
    """Merge this ticket into ``into_id``: its messages move, it closes with a link."""

    def merge(session: Session, actor: Actor) -> Response:
        source = tickets.access_ticket(session, actor, ticket_id, for_update=True)
        target = tickets.access_ticket(session, actor, body.into_id, for_update=True)
        return _changed(session, tickets.merge_tickets(session, actor, source, target))

    return await write_lane.run(request, credentials, merge)


_MESSAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": MessageCreate.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["body"],
                    "properties": {
                        "body": {"type": "string"},
                        "public": {"type": "boolean", "default": True},
                        "status": {"type": "string"},
                        "attachments": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                }
            },
        },
    }
}


async def _message_input(request: Request, max_bytes: int) -> tuple[MessageCreate, list[attachments.Upload]]:
    """The message from a JSON body, or from a multipart form with files in ``attachments``."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        try:
            return MessageCreate.model_validate_json(await request.body()), []
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from error
    form = await request.form(max_files=attachments.MAX_FILES + 1)
    fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    try:
        message = MessageCreate.model_validate(fields)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from error
    uploads: list[attachments.Upload] = []
    for part in form.getlist("attachments"):
        if isinstance(part, str):
            continue
        data = await part.read(max_bytes + 1)  # a byte over the limit is enough to refuse it
        uploads.append(
            attachments.Upload(
                filename=part.filename or "attachment",
                content_type=part.content_type or "application/octet-stream",
                data=data,
            )
        )
    return message, uploads


@router.post("/{ticket_id}/messages", status_code=201, response_model=MessageOut, openapi_extra=_MESSAGE_BODY)
async def add_message(ticket_id: int, request: Request, credentials: ApiCredentials) -> Response:
    """A public reply (``public: true``) or an internal note by the signed-in staff member.

    Send JSON, or ``multipart/form-data`` with ``body``, ``public``, ``status`` and up to 10 files
    in ``attachments``. A file over the size limit answers 413, a program or script 415; either
    way nothing is stored. Download an attachment from ``GET /api/v1/attachments/{id}``."""
    settings = request.app.state.settings
    body, uploads = await _message_input(request, settings.attachment_max_bytes)
    store = attachments.AttachmentStore(settings.attachments_dir, settings.attachment_max_bytes)
    attachments.check_uploads(uploads, store.max_bytes)

    def add(session: Session, actor: Actor) -> Response:
        ticket = tickets.access_ticket(session, actor, ticket_id, for_update=True)
        message = tickets.add_message(
            session,
            actor,
            ticket,
            body_text=body.body,
            body_html=body.body_html,
            public=body.public,
            status=body.status,
            attachments=attachments.store_uploads(store, uploads),
        )
        return write_lane.created(MessageOut.of(message))

    # In the write lane: the database work (and storing the files) off the event loop, which
    # this handler blocked before.
    return await write_lane.run(request, credentials, add)


@router.get("/{ticket_id}/messages")
def list_messages(ticket_id: int, actor: ApiActor, session: DbSession) -> list[MessageOut]:
    ticket = tickets.access_ticket(session, actor, ticket_id)
    return [MessageOut.of(message) for message in history.list_messages(session, actor, ticket)]


@router.get("/{ticket_id}/events")
def list_events(ticket_id: int, actor: ApiActor, session: DbSession) -> list[EventOut]:
    """The audit trail: every change of every field, by whom and through what."""
    ticket = tickets.access_ticket(session, actor, ticket_id)
    return [EventOut.of(event) for event in history.list_events(session, actor, ticket)]
