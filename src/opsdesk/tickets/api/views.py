"""Saved views with live counts, and the tickets of a view."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from opsdesk.tickets.schemas import (
    TicketList,
    TicketOut,
    ViewCreate,
    ViewOrder,
    ViewOut,
    ViewPatch,
    ViewPreviewOut,
)
from opsdesk.tickets.service import views
from opsdesk.web.auth import ApiActor
from opsdesk.web.sessions import DbSession

router = APIRouter(prefix="/api/v1/views", tags=["views"])
ListParam = Annotated[list[str] | None, Query()]


@router.get("")
def list_views(actor: ApiActor, session: DbSession) -> list[ViewOut]:
    """Shared views and your own, each with its live count."""
    return [ViewOut.of(entry.view, entry.count) for entry in views.views_with_counts(session, actor)]


@router.post("", status_code=201)
def create_view(body: ViewCreate, actor: ApiActor, session: DbSession) -> ViewOut:
    view = views.create_view(
        session,
        actor,
        name=body.name,
        filters=body.filters,
        sort=body.sort,
        shared=body.shared,
        position=body.position,
    )
    return ViewOut.of(view)


@router.get("/preview")
def preview_view(
    actor: ApiActor,
    session: DbSession,
    status: ListParam = None,
    assignee: Annotated[str | None, Query(description='a user id, "me" or "none"')] = None,
    group: Annotated[str | None, Query(description='a group id or "none"')] = None,
    tag: ListParam = None,
    priority: ListParam = None,
    channel: ListParam = None,
    tier: ListParam = None,
    q: str | None = None,
    solved_within_days: str | None = None,
) -> ViewPreviewOut:
    """How many tickets a filter would show you now: the view editor's live count. Takes the
    filters of ``GET /api/v1/tickets``; a bad filter answers 422 with each bad field."""
    ticket_filter, count = views.preview_count(
        session,
        actor,
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
        },
    )
    return ViewPreviewOut(count=count, filters=ticket_filter.as_dict())


@router.put("/order")
def order_views(body: ViewOrder, actor: ApiActor, session: DbSession) -> list[ViewOut]:
    """Put the shared views, or your own, in this order (list each exactly once)."""
    return [ViewOut.of(view) for view in views.reorder_views(session, actor, body.ids, shared=body.shared)]


@router.get("/{view_id}")
def get_view(view_id: int, actor: ApiActor, session: DbSession) -> ViewOut:
    view = views.access_view(session, actor, view_id)
    return ViewOut.of(view, views.count_tickets(session, actor, views.parse_filter(view.filters)))


@router.get("/{view_id}/tickets")
def view_tickets(
    view_id: int,
    actor: ApiActor,
    session: DbSession,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=views.MAX_PAGE)] = 50,
) -> TicketList:
    page = views.view_page(
        session, actor, views.access_view(session, actor, view_id), cursor=cursor, limit=limit
    )
    return TicketList(items=[TicketOut.of(ticket) for ticket in page.items], next_cursor=page.next_cursor)


@router.patch("/{view_id}")
def update_view(view_id: int, body: ViewPatch, actor: ApiActor, session: DbSession) -> ViewOut:
    view = views.access_view(session, actor, view_id)
    return ViewOut.of(views.update_view(session, actor, view, body.model_dump(exclude_unset=True)))


@router.delete("/{view_id}", status_code=204, response_class=Response)
def delete_view(view_id: int, actor: ApiActor, session: DbSession) -> Response:
    views.delete_view(session, actor, views.access_view(session, actor, view_id))
    return Response(status_code=204)
