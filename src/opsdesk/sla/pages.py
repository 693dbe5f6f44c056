"""SLA pages: the views "breaching in the next hour" and "breached", the policy editor and the
business calendar editor (weekly hours, time zone, holidays, a preview of the next openings)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from zoneinfo import available_timezones

import holidays
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.errors import DomainError
from opsdesk.sla import calendars, policies, queries
from opsdesk.sla.models import BusinessCalendarRow
from opsdesk.web.auth import csrf_token, page_actor
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def _left(seconds: int | None) -> str:
    if seconds is None:
        return ""
    sign = "-" if seconds < 0 else ""
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60}h {minutes % 60:02d}m"


def _rows(rows: list[queries.SlaViewRow]) -> list[dict[str, Any]]:
    return [
        {
            "ticket_id": row.ticket_id,
            "subject": row.subject,
            "priority": row.priority,
            "status": row.status,
            "metric": row.metric.replace("_", " "),
            "policy": row.policy,
            "due_at": row.due_at.strftime("%Y-%m-%d %H:%M UTC") if row.due_at else "",
            "left": _left(row.time_left_seconds),
        }
        for row in rows
    ]


@router.get("/sla", response_class=HTMLResponse)
def sla_views(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    soon = queries.breaching_soon(session, actor, within=timedelta(hours=1))
    late = queries.breached(session, actor)
    return render(request, "sla/views.html", {"soon": _rows(soon), "breached": _rows(late)})


def _policies_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    form: dict[str, Any],
    errors: list[str],
    status: int = 200,
) -> HTMLResponse:
    listed = [
        {
            "name": policy.name,
            "position": policy.position,
            "active": policy.is_active,
            "conditions": json.dumps(policy.conditions),
            "targets": json.dumps(policy.targets),
            "calendar": policy.calendar.name if policy.calendar else "default",
            "pause_on_hold": policy.pause_on_hold,
        }
        for policy in policies.list_policies(session, actor)
    ]
    calendar_rows = [
        {
            "id": row.id,
            "name": row.name,
            "time_zone": row.time_zone,
            "hours": json.dumps(row.hours),
            "holidays": row.holiday_country or "",
            "default": row.is_default,
        }
        for row in calendars.list_calendars(session, actor)
    ]
    return render(
        request,
        "sla/policies.html",
        {
            "policies": listed,
            "calendars": calendar_rows,
            "form": form,
            "errors": errors,
            "csrf_token": csrf_token(request),
        },
        status_code=status,
    )


@router.get("/admin/sla", response_class=HTMLResponse)
def policies_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    form = {
        "name": "",
        "conditions": '{"priority": ["urgent"]}',
        "targets": '{"first_reply": {"minutes": 60, "business_hours": true}}',
        "calendar_id": "",
        "pause_on_hold": False,
    }
    return _policies_page(request, session, actor, form=form, errors=[])


@router.post("/admin/sla/policies", response_model=None)
def create_policy_page(
    request: Request,
    name: str = Form(""),
    conditions: str = Form("{}"),
    targets: str = Form("{}"),
    calendar_id: str = Form(""),
    pause_on_hold: bool = Form(False),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    form: dict[str, Any] = {
        "name": name,
        "conditions": conditions,
        "targets": targets,
        "calendar_id": calendar_id,
        "pause_on_hold": pause_on_hold,
    }
    errors: list[str] = []
    parsed: dict[str, Any] = {}
    for field, raw in (("conditions", conditions), ("targets", targets)):
        try:
            parsed[field] = json.loads(raw or "{}")
        except json.JSONDecodeError as error:
            errors.append(f"{field}: not valid JSON ({error.msg})")
    calendar: int | None = None
    if calendar_id.strip():
        if calendar_id.strip().isdigit():
            calendar = int(calendar_id)
        else:
            errors.append("calendar: choose a calendar")
    if errors:
        return _policies_page(request, session, actor, form=form, errors=errors, status=422)
    try:
        with session.begin_nested():
            policies.save_policy(
                session,
                actor,
                name=name,
                conditions=parsed["conditions"],
                targets=parsed["targets"],
                calendar_id=calendar,
                pause_on_hold=pause_on_hold,
            )
    except DomainError as error:
        if error.status == 403:
            raise
        problems = [f"{'.'.join(map(str, problem.location))}: {problem.message}" for problem in error.fields]
        return _policies_page(
            request, session, actor, form=form, errors=problems or [error.detail], status=422
        )
    return RedirectResponse("/admin/sla", status_code=303)


# ------------------------------------------------------------------ business calendars


def _calendar_form(row: BusinessCalendarRow | None) -> dict[str, Any]:
    if row is None:
        return {
            "id": "",
            "name": "",
            "time_zone": "America/New_York",
            "hours": calendars.hours_as_text({day: [["09:00", "17:00"]] for day in WEEKDAYS}),
            "holiday_country": "",
            "holiday_subdivision": "",
            "closed_dates": "",
            "is_default": False,
        }
    return {
        "id": str(row.id),
        "name": row.name,
        "time_zone": row.time_zone,
        "hours": calendars.hours_as_text(row.hours),
        "holiday_country": row.holiday_country or "",
        "holiday_subdivision": row.holiday_subdivision or "",
        "closed_dates": "\n".join(row.closed_dates),
        "is_default": row.is_default,
    }


def _calendars_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    form: dict[str, Any],
    errors: list[str],
    preview: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    now = clock.now()
    listed = []
    for row in calendars.list_calendars(session, actor):
        text = calendars.hours_as_text(row.hours)
        listed.append(
            {
                "id": row.id,
                "name": row.name,
                "time_zone": row.time_zone,
                "default": row.is_default,
                "hours": [(day, text[day] or "closed") for day in calendars.WEEKDAY_NAMES],
                "holidays": " / ".join(filter(None, [row.holiday_country, row.holiday_subdivision]))
                or "none",
                "closed_dates": ", ".join(row.closed_dates) or "none",
                "next": calendars.openings_preview(calendars.calendar_of(row), now, 3),
            }
        )
    return render(
        request,
        "sla/calendars.html",
        {
            "calendars": listed,
            "weekdays": calendars.WEEKDAY_NAMES,
            "zones": sorted(available_timezones()),
            "countries": sorted(holidays.list_supported_countries()),
            "form": form,
            "errors": errors,
            "preview": preview,
            "csrf_token": csrf_token(request),
        },
        status_code=status,
    )


@router.get("/admin/calendars", response_class=HTMLResponse)
def calendars_page(
    request: Request,
    edit: int | None = None,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    row = next((found for found in calendars.list_calendars(session, actor) if found.id == edit), None)
    return _calendars_page(request, session, actor, form=_calendar_form(row), errors=[])


@router.post("/admin/calendars", response_model=None)
async def save_calendar_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    """Validate the calendar; ``Preview`` shows its next openings without saving, ``Save`` saves."""
    submitted = await request.form()

    def field(name: str) -> str:
        value = submitted.get(name, "")
        return value if isinstance(value, str) else ""

    form: dict[str, Any] = {
        "id": field("calendar_id"),
        "name": field("name"),
        "time_zone": field("time_zone").strip(),
        "hours": {day: field(f"hours_{day}") for day in calendars.WEEKDAY_NAMES},
        "holiday_country": field("holiday_country").strip().upper(),
        "holiday_subdivision": field("holiday_subdivision").strip(),
        "closed_dates": field("closed_dates"),
        "is_default": field("is_default") == "true",
    }
    hours, problems = calendars.hours_from_text(form["hours"])
    closed = [value for value in form["closed_dates"].replace(",", " ").split() if value]
    errors = [f"{'.'.join(map(str, problem.location))}: {problem.message}" for problem in problems]
    if not errors:
        try:
            built = calendars.build_calendar(
                form["time_zone"], hours, form["holiday_country"], form["holiday_subdivision"], closed
            )
        except DomainError as error:
            errors = [f"{'.'.join(map(str, item.location))}: {item.message}" for item in error.fields]
    if errors:
        return _calendars_page(request, session, actor, form=form, errors=errors, status=422)
    if field("action") == "preview":
        preview = calendars.openings_preview(built, clock.now(), 5)
        return _calendars_page(request, session, actor, form=form, errors=[], preview=preview)
    try:
        with session.begin_nested():
            calendars.save_calendar(
                session,
                actor,
                name=form["name"],
                time_zone=form["time_zone"],
                hours=hours,
                holiday_country=form["holiday_country"] or None,
                holiday_subdivision=form["holiday_subdivision"] or None,
                closed_dates=closed,
                is_default=form["is_default"],
                calendar_id=int(form["id"]) if form["id"].isdigit() else None,
            )
    except DomainError as error:
        if error.status in (403, 404):
            raise
        problems_text = [f"{'.'.join(map(str, item.location))}: {item.message}" for item in error.fields]
        return _calendars_page(
            request, session, actor, form=form, errors=problems_text or [error.detail], status=422
        )
    return RedirectResponse("/admin/calendars", status_code=303)
