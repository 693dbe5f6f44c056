"""The home page and the ticket list of a saved view: paginated by cursor, sortable by column,
with bulk actions on the selected tickets (see :mod:`opsdesk.tickets.pages.bulk`)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.errors import DomainError
from opsdesk.tickets.pages import bulk
from opsdesk.tickets.pages.rows import TicketRow, ViewLink, page_errors, sidebar, ticket_rows
from opsdesk.tickets.service import bulk as bulk_service
from opsdesk.tickets.service import views as views_service
from opsdesk.web.auth import page_actor
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
SORT_COLUMNS = (("id", "Ticket"), ("created_at", "Created"), ("updated_at", "Updated"))


@dataclass(frozen=True, slots=True)
class SortLink:
    label: str
    href: str
    # "ascending", "descending" or "none": the value of the column header's aria-sort.
    state: str


@dataclass(frozen=True, slots=True)
class ViewPage:
    id: int
    title: str
    views: list[ViewLink]
    rows: list[TicketRow]
    total: int
    sort_links: dict[str, SortLink]
    next_href: str | None
    first_href: str | None
    error: str | None
    sort: str
    cursor: str
    bulk_form: bulk.BulkForm | None
    outcome: bulk.BulkOutcome | None
    selected_ids: frozenset[int]


def _sort_links(base: str, current: str) -> dict[str, SortLink]:
    links: dict[str, SortLink] = {}
    for column, label in SORT_COLUMNS:
        if current.lstrip("-") == column:
            state = "descending" if current.startswith("-") else "ascending"
            target = column if current.startswith("-") else f"-{column}"
        else:
            state, target = "none", f"-{column}"
        links[column] = SortLink(label, f"{base}?{urlencode({'sort': target})}", state)
    return links


@router.get("/", response_model=None)
def home(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    """Home is the first view of the sidebar (the default "My open")."""
    views = views_service.visible_views(session, actor)
    if views:
        return RedirectResponse(f"/views/{views[0].id}", status_code=303)
    return render(request, "tickets/no_views.html", {"views": []})


def _view_page(
    request: Request,
    session: Session,
    actor: Actor,
    view_id: int,
    *,
    sort: str | None,
    cursor: str | None,
    outcome: bulk.BulkOutcome | None = None,
    typed: FormData | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with page_errors():
        view = views_service.access_view(session, actor, view_id)
    views = sidebar(session, actor, view.id)
    chosen_sort = sort if sort in views_service.SORTS else view.sort
    base = f"/views/{view.id}"
    error: str | None = None
    try:
        page = views_service.list_tickets(
            session,
            actor,
            views_service.parse_filter(view.filters),
            sort=chosen_sort,
            cursor=cursor,
            limit=PAGE_SIZE,
        )
    except DomainError as refused:
        # A stale or hand-edited cursor: show the first page and say why.
        error = f"That page link is no longer valid ({refused.detail}); showing the first page."
        page = views_service.list_tickets(
            session, actor, views_service.parse_filter(view.filters), sort=chosen_sort, limit=PAGE_SIZE
        )
        cursor = None
    sort_query = {"sort": chosen_sort} if sort in views_service.SORTS else {}
    selectable = bulk.may_bulk(actor)
    model = ViewPage(
        id=view.id,
        title=view.name,
        views=views,
        rows=ticket_rows(page.items, clock.now()),
        total=next((link.count for link in views if link.id == view.id), len(page.items)),
        sort_links=_sort_links(base, chosen_sort),
        next_href=f"{base}?{urlencode({**sort_query, 'cursor': page.next_cursor})}"
        if page.next_cursor
        else None,
        first_href=f"{base}?{urlencode(sort_query)}" if cursor else None,
        error=error,
        sort=sort if sort in views_service.SORTS else "",
        cursor=cursor or "",
        bulk_form=bulk.bulk_form(session, actor, typed) if selectable else None,
        outcome=outcome,
        selected_ids=outcome.selected_ids if outcome is not None else frozenset(),
    )
    return render(request, "tickets/view.html", {"page": model, "views": views}, status_code=status_code)


@router.get("/views/{view_id}", response_class=HTMLResponse)
def view_page(
    request: Request,
    view_id: int,
    sort: str | None = None,
    cursor: str | None = None,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    return _view_page(request, session, actor, view_id, sort=sort, cursor=cursor)


@router.post("/views/{view_id}/bulk", response_class=HTMLResponse)
async def bulk_change(
    request: Request,
    view_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    """Apply the bulk bar's changes to the selected tickets, then show the list again with the
    result: how many changed, and each refused ticket with the reason."""
    form = await request.form()
    sort = str(form.get("sort") or "") or None
    cursor = str(form.get("cursor") or "") or None
    with page_errors():
        views_service.access_view(session, actor, view_id)
    ids: list[int] = []
    try:
        with page_errors(), session.begin_nested():
            ids, values = bulk.read_form(form)
            result = bulk_service.bulk_update(session, actor, ids, values)
    except DomainError as refused:
        return _view_page(
            request,
            session,
            actor,
            view_id,
            sort=sort,
            cursor=cursor,
            outcome=bulk.refusal(refused, ids),
            typed=form,
            status_code=refused.status,
        )
    session.expire_all()
    return _view_page(
        request, session, actor, view_id, sort=sort, cursor=cursor, outcome=bulk.success(result)
    )
