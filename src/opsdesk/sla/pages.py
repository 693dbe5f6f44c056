"""SLA pages: the views "breaching in the next hour" and "breached", and the policy editor."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.errors import DomainError
from opsdesk.sla import calendars, policies, queries
from opsdesk.web.auth import csrf_token, page_actor
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)


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
