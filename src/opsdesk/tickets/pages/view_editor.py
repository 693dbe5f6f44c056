"""Editing saved views from the pages: create, edit, reorder and delete personal views, and shared
views for leads and admins, with the filters of the API, a live preview count and readable errors.

The rules are the view service's (:mod:`opsdesk.tickets.service.views`): the form is read into the
same filter dictionary the API takes and a refusal is shown with the form as typed, next to the
fields it names; nothing is saved. "Preview count" works without JavaScript (the form is shown
again with the count); with it, the count follows the form as it is edited (``GET
/api/v1/views/preview``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from opsdesk.auth import service as auth_service
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission
from opsdesk.errors import DomainError
from opsdesk.tickets.enums import AccountTier, Channel, Priority
from opsdesk.tickets.models import View
from opsdesk.tickets.pages import display
from opsdesk.tickets.pages.rows import ViewLink, page_errors, sidebar
from opsdesk.tickets.service import directory
from opsdesk.tickets.service import views as views_service
from opsdesk.web.auth import page_actor
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)

STATUS_CHOICES = (
    ("unsolved", "Any unsolved"),
    ("new", "New"),
    ("open", "Open"),
    ("pending", "Pending"),
    ("on_hold", "On hold"),
    ("solved", "Solved"),
    ("closed", "Closed"),
)
SORT_LABELS = {
    "-updated_at": "Last updated, newest first",
    "updated_at": "Last updated, oldest first",
    "-created_at": "Created, newest first",
    "created_at": "Created, oldest first",
    "-id": "Ticket number, highest first",
    "id": "Ticket number, lowest first",
}
LIST_KEYS = ("status", "priority", "channel", "tier")
CHANNEL_LABELS = {"api": "API"}
NO_VIEWS_FOR_ROLE = "Your role can use views but not save them."
SHARED_READ_ONLY = (
    "This is a shared view: only leads and admins can change it. You can save a copy as your own view."
)


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str
    selected: bool = False


@dataclass(frozen=True, slots=True)
class ViewForm:
    title: str
    action: str
    view_id: int | None
    name: str
    shared: bool
    may_share: bool
    may_save: bool
    may_copy: bool
    read_only_note: str
    sorts: list[Choice]
    statuses: list[Choice]
    assignees: list[Choice]
    groups: list[Choice]
    tags: str
    priorities: list[Choice]
    channels: list[Choice]
    tiers: list[Choice]
    q: str
    solved_within_days: str
    preview: str
    problem: str
    field_errors: dict[str, list[str]]
    views: list[ViewLink]


@dataclass(frozen=True, slots=True)
class ManagedView:
    id: int
    name: str
    href: str
    count: int
    summary: str
    may_change: bool
    first: bool
    last: bool


@dataclass(frozen=True, slots=True)
class ManagePage:
    own: list[ManagedView]
    shared: list[ManagedView]
    may_share: bool
    views: list[ViewLink]
    notice: str


# ---------------------------------------------------------------- reading and showing a filter


def form_filters(form: FormData) -> dict[str, Any]:
    """The filter dictionary of the API from the posted form (blank fields left out)."""
    filters: dict[str, Any] = {}
    for key in LIST_KEYS:
        values = [str(value) for value in form.getlist(key) if str(value).strip()]
        if values:
            filters[key] = values
    tags = [part for part in str(form.get("tag") or "").replace(",", " ").split() if part]
    if tags:
        filters["tag"] = tags
    for key in ("assignee", "group", "q", "solved_within_days"):
        value = str(form.get(key) or "").strip()
        if value:
            filters[key] = value
    return filters


def _names(session: Session, actor: Actor) -> tuple[dict[str, str], dict[str, str]]:
    staff = (
        {str(user.id): user.name for user in directory.assignable_staff(session, actor)}
        if has_permission(actor, Permission.TICKET_WRITE)
        else {}
    )
    groups = {str(group.id): group.name for group in auth_service.list_groups(session, actor)}
    return staff, groups


def summary(filters: Mapping[str, Any], staff: Mapping[str, str], groups: Mapping[str, str]) -> str:
    """ "Status: open, pending · Assignee: me · Tags: vip" — a view's filter in words."""
    labels = dict(STATUS_CHOICES)
    parts: list[str] = []
    if filters.get("status"):
        parts.append("Status: " + ", ".join(labels.get(value, value) for value in filters["status"]))
    if filters.get("assignee"):
        assignee = str(filters["assignee"])
        shown = {"me": "me", "none": "nobody"}.get(assignee, staff.get(assignee, f"user {assignee}"))
        parts.append(f"Assignee: {shown}")
    if filters.get("group"):
        group = str(filters["group"])
        parts.append("Group: " + ("none" if group == "none" else groups.get(group, f"group {group}")))
    if filters.get("tag"):
        parts.append("Tags: " + ", ".join(filters["tag"]))
    if filters.get("priority"):
        parts.append("Priority: " + ", ".join(display.PRIORITY_LABELS.get(p, p) for p in filters["priority"]))
    if filters.get("channel"):
        parts.append("Channel: " + ", ".join(filters["channel"]))
    if filters.get("tier"):
        parts.append("Tier: " + ", ".join(display.TIER_LABELS.get(t, t) for t in filters["tier"]))
    if filters.get("q"):
        parts.append(f"Text: “{filters['q']}”")
    if filters.get("solved_within_days"):
        parts.append(f"Solved in the last {filters['solved_within_days']} days")
    return " · ".join(parts) or "All tickets"


def _checks(options: Sequence[tuple[str, str]], chosen: Sequence[str]) -> list[Choice]:
    return [Choice(value, label, value in chosen) for value, label in options]


def _select(options: Sequence[tuple[str, str]], chosen: str) -> list[Choice]:
    return [Choice(value, label, value == chosen) for value, label in options]


def _as_strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [str(value)]


def build_form(
    session: Session,
    actor: Actor,
    *,
    view: View | None,
    name: str,
    shared: bool,
    sort: str,
    filters: Mapping[str, Any],
    preview: str = "",
    error: DomainError | None = None,
) -> ViewForm:
    staff, groups = _names(session, actor)
    may_share = views_service.may_manage_shared_views(actor)
    may_own = has_permission(actor, Permission.VIEW_MANAGE_OWN)
    may_save = may_own and (view is None or view.owner_id is not None or may_share)
    field_errors: dict[str, list[str]] = {}
    for item in error.fields if error is not None else []:
        key = str(item.location[0]) if item.location else "form"
        field_errors.setdefault(key, []).append(item.message)
    assignee = str(filters.get("assignee") or "")
    group = str(filters.get("group") or "")
    return ViewForm(
        title=f"Edit view “{view.name}”" if view is not None else "New view",
        action=f"/views/{view.id}/edit" if view is not None and may_save else "/views/new",
        view_id=view.id if view is not None else None,
        name=name,
        shared=shared,
        may_share=may_share,
        may_save=may_save,
        may_copy=may_own and not may_save,
        read_only_note="" if may_save else SHARED_READ_ONLY if may_own else NO_VIEWS_FOR_ROLE,
        sorts=_select(list(SORT_LABELS.items()), sort),
        statuses=_checks(STATUS_CHOICES, _as_strings(filters.get("status"))),
        assignees=_select(
            [("", "Anyone"), ("me", "Me"), ("none", "Nobody (unassigned)"), *staff.items()], assignee
        ),
        groups=_select([("", "Any group"), ("none", "No group"), *groups.items()], group),
        tags=", ".join(_as_strings(filters.get("tag"))),
        priorities=_checks(
            [(p.value, display.PRIORITY_LABELS[p.value]) for p in Priority],
            _as_strings(filters.get("priority")),
        ),
        channels=_checks(
            [(c.value, CHANNEL_LABELS.get(c.value, c.value.capitalize())) for c in Channel],
            _as_strings(filters.get("channel")),
        ),
        tiers=_checks(
            [(t.value, display.TIER_LABELS[t.value]) for t in AccountTier], _as_strings(filters.get("tier"))
        ),
        q=str(filters.get("q") or ""),
        solved_within_days=str(filters.get("solved_within_days") or ""),
        preview=preview,
        problem=f"Nothing was saved: {error.detail}." if error is not None else "",
        field_errors=field_errors,
        views=sidebar(session, actor, view.id if view is not None else None),
    )


def _render_form(request: Request, model: ViewForm, status_code: int = 200) -> HTMLResponse:
    return render(
        request, "tickets/view_form.html", {"page": model, "views": model.views}, status_code=status_code
    )


def _preview_text(session: Session, actor: Actor, filters: Mapping[str, Any]) -> str:
    _, count = views_service.preview_count(session, actor, filters)
    return "1 ticket matches" if count == 1 else f"{count} tickets match"


# ---------------------------------------------------------------- pages


@router.get("/views/manage", response_class=HTMLResponse)
def manage_views(
    request: Request,
    notice: str = "",
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    """Your views and the shared ones: order, edit, delete."""
    links = sidebar(session, actor)
    counts = {link.id: link.count for link in links}
    staff, groups = _names(session, actor)
    may_share = views_service.may_manage_shared_views(actor)
    all_views = views_service.visible_views(session, actor)

    def rows(items: list[View], may_change: bool) -> list[ManagedView]:
        return [
            ManagedView(
                id=view.id,
                name=view.name,
                href=f"/views/{view.id}",
                count=counts.get(view.id, 0),
                summary=summary(view.filters or {}, staff, groups),
                may_change=may_change,
                first=index == 0,
                last=index == len(items) - 1,
            )
            for index, view in enumerate(items)
        ]

    model = ManagePage(
        own=rows([view for view in all_views if view.owner_id is not None], True),
        shared=rows([view for view in all_views if view.owner_id is None], may_share),
        may_share=may_share,
        views=links,
        notice={"deleted": "The view was deleted.", "moved": "The order was saved."}.get(notice, ""),
    )
    return render(request, "tickets/view_manage.html", {"page": model, "views": links})


@router.get("/views/new", response_class=HTMLResponse)
def new_view(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    default_filters = {"status": ["unsolved"]}
    model = build_form(
        session,
        actor,
        view=None,
        name="",
        shared=False,
        sort="-updated_at",
        filters=default_filters,
        preview=_preview_text(session, actor, default_filters),
    )
    return _render_form(request, model)


def _submitted(form: FormData) -> tuple[str, bool, str, dict[str, Any]]:
    return (
        str(form.get("name") or ""),
        form.get("shared") == "on",
        str(form.get("sort") or "-updated_at"),
        form_filters(form),
    )


def _try_preview(
    session: Session, actor: Actor, filters: Mapping[str, Any]
) -> tuple[str, DomainError | None]:
    try:
        return _preview_text(session, actor, filters), None
    except DomainError as error:
        return "", error


@router.post("/views/new", response_model=None)
async def create_view(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    form = await request.form()
    name, shared, sort, filters = _submitted(form)
    if form.get("action") == "preview":
        preview, error = _try_preview(session, actor, filters)
        model = build_form(
            session,
            actor,
            view=None,
            name=name,
            shared=shared,
            sort=sort,
            filters=filters,
            preview=preview,
            error=error,
        )
        return _render_form(request, model, 422 if error else 200)
    try:
        with page_errors(), session.begin_nested():
            view = views_service.create_view(
                session,
                actor,
                name=name,
                filters=filters,
                sort=sort,
                shared=shared,
                position=_next_position(session, actor, shared),
            )
    except DomainError as error:
        preview, _ = _try_preview(session, actor, filters)
        model = build_form(
            session,
            actor,
            view=None,
            name=name,
            shared=shared,
            sort=sort,
            filters=filters,
            preview=preview,
            error=error,
        )
        return _render_form(request, model, error.status)
    return RedirectResponse(f"/views/{view.id}", status_code=303)


def _next_position(session: Session, actor: Actor, shared: bool) -> int:
    scope = [
        view for view in views_service.visible_views(session, actor) if (view.owner_id is None) == shared
    ]
    return max((view.position for view in scope), default=-1) + 1


@router.get("/views/{view_id}/edit", response_class=HTMLResponse)
def edit_view(
    request: Request,
    view_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    with page_errors():
        view = views_service.access_view(session, actor, view_id)
    preview, _ = _try_preview(session, actor, view.filters or {})
    model = build_form(
        session,
        actor,
        view=view,
        name=view.name
        if views_service.may_manage_shared_views(actor) or view.owner_id
        else f"{view.name} (my copy)",
        shared=view.owner_id is None,
        sort=view.sort,
        filters=view.filters or {},
        preview=preview,
    )
    return _render_form(request, model)


@router.post("/views/{view_id}/edit", response_model=None)
async def save_view(
    request: Request,
    view_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    form = await request.form()
    name, shared, sort, filters = _submitted(form)
    with page_errors():
        view = views_service.access_view(session, actor, view_id)
    if form.get("action") == "preview":
        preview, error = _try_preview(session, actor, filters)
        model = build_form(
            session,
            actor,
            view=view,
            name=name,
            shared=shared,
            sort=sort,
            filters=filters,
            preview=preview,
            error=error,
        )
        return _render_form(request, model, 422 if error else 200)
    try:
        with page_errors(), session.begin_nested():
            views_service.update_view(
                session, actor, view, {"name": name, "filters": filters, "sort": sort, "shared": shared}
            )
    except DomainError as error:
        session.refresh(view)
        preview, _ = _try_preview(session, actor, filters)
        model = build_form(
            session,
            actor,
            view=view,
            name=name,
            shared=shared,
            sort=sort,
            filters=filters,
            preview=preview,
            error=error,
        )
        return _render_form(request, model, error.status)
    return RedirectResponse(f"/views/{view_id}", status_code=303)


@router.post("/views/{view_id}/delete", response_model=None)
def delete_view(
    view_id: int, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    with page_errors():
        views_service.delete_view(session, actor, views_service.access_view(session, actor, view_id))
    return RedirectResponse("/views/manage?notice=deleted", status_code=303)


@router.post("/views/{view_id}/move", response_model=None)
async def move_view(
    request: Request,
    view_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    form = await request.form()
    offset = -1 if form.get("direction") == "up" else 1
    with page_errors():
        views_service.move_view(session, actor, views_service.access_view(session, actor, view_id), offset)
    return RedirectResponse("/views/manage?notice=moved", status_code=303)
