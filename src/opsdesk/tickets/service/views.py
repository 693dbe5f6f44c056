"""Saved views: named ticket filters with live counts, and the filter -> SQL compiler that the
ticket list API, the view pages and the view counts all share.

A filter is plain data (what a view stores as JSON, what the list endpoint's query string says):
``status`` (categories, or ``"unsolved"``), ``assignee`` (a user id, ``"me"`` or ``"none"``),
``group`` (an id or ``"none"``), ``tag``, ``priority``, ``channel``, ``tier`` (the account's),
``q`` (keywords), ``solved_within_days``. Lists mean "any of". Invariants: the compiled query
always includes the actor's visibility (contractors: their groups only); unknown keys and bad
values are refused with a field list, never ignored. Shared views have no owner; personal views
belong to one user. The four default views exist once (made by :func:`ensure_default_views`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, joinedload, lazyload, selectinload

from opsdesk import clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import User
from opsdesk.auth.permissions import Permission, has_permission, require
from opsdesk.errors import FieldProblem, NotFoundError, ValidationFailedError
from opsdesk.tickets.enums import UNSOLVED_STATUSES, AccountTier, Channel, Priority, StatusCategory
from opsdesk.tickets.models import Account, Person, Ticket, TicketTag, View
from opsdesk.tickets.service.access import visibility_clause
from opsdesk.tickets.service.search import matching_ticket_ids, newest_matching_ids

FILTER_KEYS = frozenset(
    {"status", "assignee", "group", "tag", "priority", "channel", "tier", "q", "solved_within_days"}
)
SORTS: dict[str, tuple[str, bool]] = {
    "-updated_at": ("updated_at", True),
    "updated_at": ("updated_at", False),
    "-created_at": ("created_at", True),
    "created_at": ("created_at", False),
    "-id": ("id", True),
    "id": ("id", False),
}
DEFAULT_SORT = "-id"
# What a list of tickets shows, loaded in a fixed number of queries whatever the page size: the
# requester's emails, account, assignee, group, status name and tags. Deeper relations (an
# account's owner, a person's other accounts) load only if something asks for them.
LIST_LOADING = (
    selectinload(Ticket.tag_rows),
    joinedload(Ticket.requester).options(
        selectinload(Person.emails),
        lazyload(Person.external_ids),
        lazyload(Person.other_accounts),
        lazyload(Person.primary_account),
    ),
    joinedload(Ticket.account).options(lazyload(Account.owner), lazyload(Account.domains)),
    joinedload(Ticket.assignee).lazyload(User.memberships),
    joinedload(Ticket.group),
    joinedload(Ticket.custom_status),
)
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class TicketFilter:
    statuses: tuple[str, ...] = ()
    assignee: str | None = None
    group: str | None = None
    tags: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    text: str | None = None
    solved_within_days: int | None = None

    def as_dict(self) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "status": list(self.statuses),
            "assignee": self.assignee,
            "group": self.group,
            "tag": list(self.tags),
            "priority": list(self.priorities),
            "channel": list(self.channels),
            "tier": list(self.tiers),
            "q": self.text,
            "solved_within_days": self.solved_within_days,
        }
        return {key: value for key, value in stored.items() if value not in (None, [], "")}


@dataclass(frozen=True, slots=True)
class TicketPage:
    items: list[Ticket]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ViewCount:
    view: View
    count: int


@dataclass(frozen=True, slots=True)
class DefaultView:
    name: str
    filters: dict[str, Any]
    sort: str
    position: int


DEFAULT_VIEWS: tuple[DefaultView, ...] = (
    DefaultView(
        "My open", {"status": ["new", "open", "pending", "on_hold"], "assignee": "me"}, "-updated_at", 0
    ),
    DefaultView("Unassigned", {"status": ["new", "open"], "assignee": "none"}, "created_at", 1),
    DefaultView("All unsolved", {"status": ["unsolved"]}, "-updated_at", 2),
    DefaultView(
        "Recently solved", {"status": ["solved", "closed"], "solved_within_days": 7}, "-updated_at", 3
    ),
)


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(item).strip() for item in value if str(item).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _choices(
    values: list[str], allowed: type[Any], name: str, problems: list[FieldProblem]
) -> tuple[str, ...]:
    valid = {member.value for member in allowed}
    bad = [value for value in values if value not in valid]
    if bad:
        problems.append(FieldProblem((name,), f"unknown {', '.join(bad)}; use {', '.join(sorted(valid))}"))
    return tuple(values)


def _reference(value: Any, name: str, special: set[str], problems: list[FieldProblem]) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text in special or text.isdigit():
        return text
    problems.append(FieldProblem((name,), f"must be an id or one of {', '.join(sorted(special))}"))
    return None


def parse_filter(raw: Mapping[str, Any]) -> TicketFilter:
    """A filter from stored JSON or a query string; every bad key or value is listed."""
    problems: list[FieldProblem] = []
    for key in sorted(set(raw) - FILTER_KEYS):
        problems.append(FieldProblem((key,), "not a filter", "unknown_filter"))
    statuses = _as_list(raw.get("status"))
    allowed_status = {member.value for member in StatusCategory} | {"unsolved"}
    bad_status = [value for value in statuses if value not in allowed_status]
    if bad_status:
        problems.append(
            FieldProblem(
                ("status",), f"unknown {', '.join(bad_status)}; use {', '.join(sorted(allowed_status))}"
            )
        )
    days = raw.get("solved_within_days")
    solved_within: int | None = None
    if days not in (None, ""):
        try:
            solved_within = int(days)
            if solved_within < 1:
                raise ValueError
        except (TypeError, ValueError):
            problems.append(FieldProblem(("solved_within_days",), "must be a positive whole number"))
    text = str(raw.get("q") or "").strip() or None
    if text is not None and len(text) > 200:
        problems.append(FieldProblem(("q",), "must be at most 200 characters"))
    result = TicketFilter(
        statuses=tuple(statuses),
        assignee=_reference(raw.get("assignee"), "assignee", {"me", "none"}, problems),
        group=_reference(raw.get("group"), "group", {"none"}, problems),
        tags=tuple(tag.lower() for tag in _as_list(raw.get("tag"))),
        priorities=_choices(_as_list(raw.get("priority")), Priority, "priority", problems),
        channels=_choices(_as_list(raw.get("channel")), Channel, "channel", problems),
        tiers=_choices(_as_list(raw.get("tier")), AccountTier, "tier", problems),
        text=text,
        solved_within_days=solved_within,
    )
    if problems:
        raise ValidationFailedError("the filter is not valid", fields=problems)
    return result


def filter_clauses(session: Session, actor: Actor, ticket_filter: TicketFilter) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a filter for this actor (visibility always included)."""
    clauses: list[ColumnElement[bool]] = [visibility_clause(actor)]
    statuses: set[str] = set()
    for status in ticket_filter.statuses:
        statuses |= set(UNSOLVED_STATUSES) if status == "unsolved" else {status}
    if statuses:
        ordered = sorted(statuses)
        clauses.append(Ticket.status == ordered[0] if len(ordered) == 1 else Ticket.status.in_(ordered))
    if ticket_filter.assignee == "none":
        clauses.append(Ticket.assignee_id.is_(None))
    elif ticket_filter.assignee == "me":
        clauses.append(Ticket.assignee_id == (actor.user_id or -1))
    elif ticket_filter.assignee is not None:
        clauses.append(Ticket.assignee_id == int(ticket_filter.assignee))
    if ticket_filter.group == "none":
        clauses.append(Ticket.group_id.is_(None))
    elif ticket_filter.group is not None:
        clauses.append(Ticket.group_id == int(ticket_filter.group))
    for tag in ticket_filter.tags:
        clauses.append(exists().where(TicketTag.ticket_id == Ticket.id, TicketTag.tag == tag))
    if ticket_filter.priorities:
        clauses.append(Ticket.priority.in_(ticket_filter.priorities))
    if ticket_filter.channels:
        clauses.append(Ticket.channel.in_(ticket_filter.channels))
    if ticket_filter.tiers:
        clauses.append(Ticket.account_id.in_(select(Account.id).where(Account.tier.in_(ticket_filter.tiers))))
    if ticket_filter.solved_within_days is not None:
        clauses.append(Ticket.solved_at >= clock.now() - timedelta(days=ticket_filter.solved_within_days))
    if ticket_filter.text:
        clauses.append(Ticket.id.in_(matching_ticket_ids(session, ticket_filter.text)))
    return clauses


def encode_cursor(sort: str, ticket: Ticket) -> str:
    column, _ = SORTS[sort]
    value = getattr(ticket, column)
    payload = [sort, value.isoformat() if hasattr(value, "isoformat") else value, ticket.id]
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stored_sort, value, last_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if stored_sort != sort or not isinstance(last_id, int):
            raise ValueError("cursor of another sort")
        column, _ = SORTS[sort]
        if column != "id":
            value = datetime.fromisoformat(value)
        return value, last_id
    except (ValueError, TypeError, KeyError) as error:
        raise ValidationFailedError(
            "bad cursor", fields=[FieldProblem(("cursor",), "not a cursor from this list")]
        ) from error


def ordered_page_query(
    session: Session,
    actor: Actor,
    ticket_filter: TicketFilter,
    *,
    sort: str = DEFAULT_SORT,
    cursor: str | None = None,
    limit: int = 50,
) -> Select[Ticket]:
    if sort not in SORTS:
        raise ValidationFailedError(
            "unknown sort", fields=[FieldProblem(("sort",), f"use one of {', '.join(SORTS)}")]
        )
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailedError(
            "bad limit", fields=[FieldProblem(("limit",), f"must be between 1 and {MAX_PAGE}")]
        )
    require(actor, Permission.TICKET_READ)
    column_name, descending = SORTS[sort]
    column = getattr(Ticket, column_name)
    statement = select(Ticket).where(and_(*filter_clauses(session, actor, ticket_filter)))
    if cursor:
        value, last_id = _decode_cursor(cursor, sort)
        if column_name == "id":
            statement = statement.where(Ticket.id < last_id if descending else Ticket.id > last_id)
        elif descending:
            statement = statement.where(or_(column < value, and_(column == value, Ticket.id < last_id)))
        else:
            statement = statement.where(or_(column > value, and_(column == value, Ticket.id > last_id)))
    if column_name == "id":
        order = [Ticket.id.desc() if descending else Ticket.id.asc()]
    else:
        order = [column.desc(), Ticket.id.desc()] if descending else [column.asc(), Ticket.id.asc()]
    return statement.order_by(*order).limit(limit + 1)


def list_tickets(
    session: Session,
    actor: Actor,
    ticket_filter: TicketFilter,
    *,
    sort: str = DEFAULT_SORT,
    cursor: str | None = None,
    limit: int = 50,
) -> TicketPage:
    """One page of tickets matching the filter, newest first by default, with the next cursor."""
    if ticket_filter.text and sort in ("-id", "-created_at"):
        rows = _newest_matches(session, actor, ticket_filter, sort=sort, cursor=cursor, limit=limit)
    else:
        statement = ordered_page_query(session, actor, ticket_filter, sort=sort, cursor=cursor, limit=limit)
        rows = list(session.scalars(statement.options(*LIST_LOADING)).unique())
    has_more = len(rows) > limit
    items = rows[:limit]
    next_cursor = encode_cursor(sort, items[-1]) if has_more and items else None
    return TicketPage(items=items, next_cursor=next_cursor)


def _newest_matches(
    session: Session, actor: Actor, ticket_filter: TicketFilter, *, sort: str, cursor: str | None, limit: int
) -> list[Ticket]:
    """Keyword matches newest first without touching every match: the index hands out matching
    ids in descending order, a chunk at a time (see ``search.newest_matching_ids``), and only
    those ids are checked against the other filters. A common word over a million tickets then
    costs a few chunks, not a sort of all its matches. (Tickets are numbered in creation order,
    so newest-by-id is newest-created.)"""
    require(actor, Permission.TICKET_READ)
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationFailedError(
            "bad limit", fields=[FieldProblem(("limit",), f"must be between 1 and {MAX_PAGE}")]
        )
    upper: int | None = None
    if cursor:
        _, upper = _decode_cursor(cursor, sort)
    others = filter_clauses(session, actor, replace(ticket_filter, text=None))
    words = ticket_filter.text or ""
    found: list[Ticket] = []
    chunk = max(200, 4 * (limit + 1))
    while len(found) <= limit:
        ids = newest_matching_ids(session, words, below=upper, count=chunk)
        if not ids:
            break
        statement = (
            select(Ticket)
            .where(Ticket.id.in_(ids), *others)
            .order_by(Ticket.id.desc())
            .limit(limit + 1 - len(found))
            .options(*LIST_LOADING)
        )
        found.extend(session.scalars(statement).unique())
        if len(ids) < chunk:
            break
        upper = ids[-1]
        chunk = min(chunk * 4, 20_000)
    return found[: limit + 1]


def count_tickets(session: Session, actor: Actor, ticket_filter: TicketFilter) -> int:
    require(actor, Permission.TICKET_READ)
    statement = (
        select(func.count()).select_from(Ticket).where(and_(*filter_clauses(session, actor, ticket_filter)))
    )
    return int(session.scalar(statement) or 0)


# ---------------------------------------------------------------- saved views


def ensure_default_views(session: Session, defaults: Sequence[DefaultView] = DEFAULT_VIEWS) -> list[View]:
    """Create the shipped shared views that do not exist yet (idempotent). Other domains ship their
    own default views through ``defaults`` (triage's "Needs triage")."""
    existing = {
        view.name
        for view in session.scalars(select(View).where(View.owner_id.is_(None), View.is_default.is_(True)))
    }
    created = []
    for default in defaults:
        if default.name in existing:
            continue
        view = View(
            name=default.name,
            owner_id=None,
            filters=dict(default.filters),
            sort=default.sort,
            position=default.position,
            is_default=True,
            created_at=clock.now(),
        )
        session.add(view)
        created.append(view)
    session.flush()
    return created


def visible_views(session: Session, actor: Actor) -> list[View]:
    """Shared views and the actor's own, in display order."""
    require(actor, Permission.TICKET_READ)
    return list(
        session.scalars(
            select(View)
            .where(or_(View.owner_id.is_(None), View.owner_id == (actor.user_id or -1)))
            .order_by(View.owner_id.is_not(None), View.position, View.id)
        )
    )


def views_with_counts(session: Session, actor: Actor) -> list[ViewCount]:
    """Every view the actor sees with its live count (one COUNT per view, each on an index)."""
    return [
        ViewCount(view=view, count=count_tickets(session, actor, parse_filter(view.filters)))
        for view in visible_views(session, actor)
    ]


def access_view(session: Session, actor: Actor, view_id: int) -> View:
    require(actor, Permission.TICKET_READ)
    view = session.get(View, view_id)
    if view is None or (view.owner_id is not None and view.owner_id != actor.user_id):
        raise NotFoundError(f"view {view_id} not found")
    return view


def _check_manage(actor: Actor, shared: bool) -> None:
    require(actor, Permission.VIEW_MANAGE_SHARED if shared else Permission.VIEW_MANAGE_OWN)


def _clean_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 120:
        raise ValidationFailedError(
            "the view is not valid", fields=[FieldProblem(("name",), "must be 1 to 120 characters")]
        )
    return cleaned


def _check_sort(sort: str) -> str:
    if sort not in SORTS:
        raise ValidationFailedError(
            "the view is not valid", fields=[FieldProblem(("sort",), f"use one of {', '.join(SORTS)}")]
        )
    return sort


def create_view(
    session: Session,
    actor: Actor,
    *,
    name: str,
    filters: Mapping[str, Any],
    sort: str = "-updated_at",
    shared: bool = False,
    position: int = 100,
) -> View:
    _check_manage(actor, shared)
    cleaned = parse_filter(filters)
    view = View(
        name=_clean_name(name),
        owner_id=None if shared else actor.user_id,
        filters=cleaned.as_dict(),
        sort=_check_sort(sort),
        position=position,
        is_default=False,
        created_at=clock.now(),
    )
    session.add(view)
    session.flush()
    audit.record(
        session, actor, entity_type="view", entity_id=view.id, action="created", new={"name": view.name}
    )
    return view


def update_view(session: Session, actor: Actor, view: View, values: Mapping[str, Any]) -> View:
    """Change a view; ``shared`` moves a personal view to everyone (or back to the actor), which
    needs the shared-view permission either way."""
    _check_manage(actor, view.owner_id is None)
    unknown = set(values) - {"name", "filters", "sort", "position", "shared"}
    if unknown:
        raise ValidationFailedError(
            "unknown fields", fields=[FieldProblem((key,), "cannot be changed") for key in sorted(unknown)]
        )
    changes: dict[str, tuple[Any, Any]] = {}
    new_values: dict[str, Any] = {}
    if "name" in values:
        new_values["name"] = _clean_name(str(values["name"]))
    if "filters" in values:
        new_values["filters"] = parse_filter(values["filters"] or {}).as_dict()
    if "sort" in values:
        new_values["sort"] = _check_sort(str(values["sort"]))
    if "position" in values:
        new_values["position"] = int(values["position"])
    shared_now = view.owner_id is None
    if "shared" in values and values["shared"] is not None and bool(values["shared"]) != shared_now:
        _check_manage(actor, True)
        new_values["owner_id"] = None if values["shared"] else actor.user_id
    for key, value in new_values.items():
        if getattr(view, key) != value:
            changes[key] = (getattr(view, key), value)
            setattr(view, key, value)
    if changes:
        session.flush()
        audit.record_changes(session, actor, entity_type="view", entity_id=view.id, changes=changes)
    return view


def delete_view(session: Session, actor: Actor, view: View) -> None:
    _check_manage(actor, view.owner_id is None)
    audit.record(
        session, actor, entity_type="view", entity_id=view.id, action="deleted", old={"name": view.name}
    )
    session.delete(view)
    session.flush()


def _scope_views(session: Session, actor: Actor, shared: bool) -> list[View]:
    owner = View.owner_id.is_(None) if shared else View.owner_id == (actor.user_id or -1)
    return list(session.scalars(select(View).where(owner).order_by(View.position, View.id)))


def reorder_views(session: Session, actor: Actor, view_ids: Sequence[int], *, shared: bool) -> list[View]:
    """Put the shared views (or the actor's own) in the given order. ``view_ids`` must name each
    of them exactly once; positions become 0, 1, 2 … and each move is audited."""
    _check_manage(actor, shared)
    current = _scope_views(session, actor, shared)
    by_id = {view.id: view for view in current}
    if sorted(view_ids) != sorted(by_id):
        scope = "shared views" if shared else "your views"
        raise ValidationFailedError(
            "the order is not valid",
            fields=[FieldProblem(("ids",), f"list each of {scope} exactly once: {sorted(by_id)}")],
        )
    ordered = [by_id[view_id] for view_id in view_ids]
    for position, view in enumerate(ordered):
        if view.position != position:
            audit.record_changes(
                session,
                actor,
                entity_type="view",
                entity_id=view.id,
                changes={"position": (view.position, position)},
            )
            view.position = position
    session.flush()
    return ordered


def move_view(session: Session, actor: Actor, view: View, offset: int) -> list[View]:
    """Move a view up (``-1``) or down (``+1``) among its scope's views."""
    shared = view.owner_id is None
    _check_manage(actor, shared)
    ids = [item.id for item in _scope_views(session, actor, shared)]
    index = ids.index(view.id)
    target = min(max(index + offset, 0), len(ids) - 1)
    ids.insert(target, ids.pop(index))
    return reorder_views(session, actor, ids, shared=shared)


def preview_count(session: Session, actor: Actor, filters: Mapping[str, Any]) -> tuple[TicketFilter, int]:
    """How many tickets a filter matches for the actor now (the view editor's live count)."""
    parsed = parse_filter(filters)
    return parsed, count_tickets(session, actor, parsed)


def view_page(
    session: Session, actor: Actor, view: View, *, cursor: str | None = None, limit: int = 50
) -> TicketPage:
    return list_tickets(
        session, actor, parse_filter(view.filters), sort=view.sort, cursor=cursor, limit=limit
    )


def may_manage_shared_views(actor: Actor) -> bool:
    return has_permission(actor, Permission.VIEW_MANAGE_SHARED)


def filter_from_query(params: Sequence[tuple[str, str]]) -> TicketFilter:
    """A filter from repeated query parameters (``?status=open&status=pending&tag=vip``)."""
    collected: dict[str, Any] = {}
    for key, value in params:
        if key in {"cursor", "limit", "sort"}:
            continue
        collected.setdefault(key, []).append(value)
    flattened = {
        key: (values if key in {"status", "tag", "priority", "channel", "tier"} else values[-1])
        for key, values in collected.items()
    }
    return parse_filter(flattened)
