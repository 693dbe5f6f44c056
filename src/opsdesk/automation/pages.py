"""Pages of automation: rule and macro editors (validated before they are saved), the dead
letters of the job runner (with a retry button), and previewing / applying a macro on a ticket."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.automation import escalations, macros, rules
from opsdesk.automation.ticket_panels import change_rows
from opsdesk.errors import DomainError
from opsdesk.jobs import service as jobs_service
from opsdesk.tickets.enums import PRIORITY_RANK, AccountTier, Priority
from opsdesk.tickets.service import access_ticket
from opsdesk.web.auth import csrf_token, page_actor
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/admin/jobs", response_class=HTMLResponse)
def dead_letters_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    jobs = jobs_service.dead_letters(session, actor)
    counts = jobs_service.job_counts(session, actor)
    rows = [
        {
            "id": job.id,
            "kind": job.kind,
            "attempts": job.attempts,
            "idempotency_key": job.idempotency_key,
            "last_error": job.last_error or "",
            "finished_at": job.finished_at.strftime("%Y-%m-%d %H:%M:%S UTC") if job.finished_at else "",
        }
        for job in jobs
    ]
    return render(
        request,
        "automation/dead_letters.html",
        {
            "rows": rows,
            "counts": sorted(counts.items()),
            "csrf_token": csrf_token(request),
            "retried": request.query_params.get("retried"),
        },
    )


@router.post("/admin/jobs/{job_id}/retry", response_model=None)
def retry_dead_letter(
    job_id: int, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    jobs_service.retry_dead_letter(session, actor, job_id)
    return RedirectResponse(f"/admin/jobs?retried={job_id}", status_code=303)


def _json_field(raw: str, name: str, default: Any) -> tuple[Any, str | None]:
    if not raw.strip():
        return default, None
    try:
        return json.loads(raw), None
    except json.JSONDecodeError as error:
        return default, f"{name}: not valid JSON ({error.msg} at line {error.lineno})"


def _problems(error: DomainError) -> list[str]:
    return [f"{'.'.join(map(str, problem.location))}: {problem.message}" for problem in error.fields] or [
        error.detail
    ]


def _rules_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    form: dict[str, str],
    errors: list[str],
    status: int = 200,
) -> HTMLResponse:
    listed = [
        {
            "name": rule.name,
            "kind": rule.kind,
            "events": ", ".join(rule.events),
            "active": rule.is_active,
            "fire_count": rule.fire_count,
            "conditions": json.dumps(rule.conditions),
            "actions": json.dumps(rule.actions),
        }
        for rule in rules.list_rules(session, actor)
    ]
    return render(
        request,
        "automation/rules.html",
        {
            "rules": listed,
            "form": form,
            "errors": errors,
            "csrf_token": csrf_token(request),
            "events": rules.TRIGGER_EVENTS,
        },
        status_code=status,
    )


EMPTY_RULE_FORM = {
    "name": "",
    "kind": "trigger",
    "events": "created",
    "conditions": '{"all": []}',
    "actions": "[]",
}


@router.get("/admin/rules", response_class=HTMLResponse)
def rules_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    return _rules_page(request, session, actor, form=dict(EMPTY_RULE_FORM), errors=[])


@router.post("/admin/rules", response_model=None)
def create_rule_page(
    request: Request,
    name: str = Form(""),
    kind: str = Form("trigger"),
    events: str = Form(""),
    conditions: str = Form(""),
    actions: str = Form(""),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    form = {"name": name, "kind": kind, "events": events, "conditions": conditions, "actions": actions}
    parsed_conditions, conditions_error = _json_field(conditions, "conditions", {})
    parsed_actions, actions_error = _json_field(actions, "actions", [])
    errors = [error for error in (conditions_error, actions_error) if error]
    if errors:
        return _rules_page(request, session, actor, form=form, errors=errors, status=422)
    try:
        with session.begin_nested():
            rules.save_rule(
                session,
                actor,
                name=name,
                kind=kind,
                events=[event.strip() for event in events.split(",") if event.strip()],
                conditions=parsed_conditions,
                actions=parsed_actions,
            )
    except DomainError as error:
        if error.status == 403:
            raise
        return _rules_page(request, session, actor, form=form, errors=_problems(error), status=422)
    return RedirectResponse("/admin/rules", status_code=303)


def _macros_page(
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
            "id": macro.id,
            "name": macro.name,
            "shared": macro.owner_id is None,
            "usage_count": macro.usage_count,
            "body": macro.body_template,
            "actions": json.dumps(macro.actions),
        }
        for macro in macros.visible_macros(session, actor)
    ]
    return render(
        request,
        "automation/macros.html",
        {
            "macros": listed,
            "form": form,
            "errors": errors,
            "csrf_token": csrf_token(request),
            "can_share": macros.can_manage_shared(actor),
        },
        status_code=status,
    )


@router.get("/admin/macros", response_class=HTMLResponse)
def macros_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    return _macros_page(
        request,
        session,
        actor,
        form={"name": "", "body_template": "", "actions": "[]", "shared": False},
        errors=[],
    )


@router.post("/admin/macros", response_model=None)
def create_macro_page(
    request: Request,
    name: str = Form(""),
    body_template: str = Form(""),
    actions: str = Form(""),
    shared: bool = Form(False),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    form: dict[str, Any] = {
        "name": name,
        "body_template": body_template,
        "actions": actions,
        "shared": shared,
    }
    parsed_actions, actions_error = _json_field(actions, "actions", [])
    if actions_error:
        return _macros_page(request, session, actor, form=form, errors=[actions_error], status=422)
    try:
        with session.begin_nested():
            macros.save_macro(
                session, actor, name=name, body_template=body_template, actions=parsed_actions, shared=shared
            )
    except DomainError as error:
        return _macros_page(request, session, actor, form=form, errors=_problems(error), status=422)
    return RedirectResponse("/admin/macros", status_code=303)


# ------------------------------------------------------------------ macros on a ticket


def _preview_page(
    request: Request,
    session: Session,
    actor: Actor,
    ticket_id: int,
    macro_id: int,
    *,
    errors: list[str],
    status: int = 200,
) -> HTMLResponse:
    ticket = access_ticket(session, actor, ticket_id)
    macro = macros.access_macro(session, actor, macro_id)
    preview = macros.preview_macro(session, actor, ticket, macro)
    requester = ticket.requester
    address = requester.primary_email
    return render(
        request,
        "automation/macro_preview.html",
        {
            "ticket": ticket,
            "macro": macro,
            "preview": preview,
            "requester": f"{requester.name} <{address}>" if address else requester.name,
            "changes": change_rows(session, ticket, preview),
            "errors": errors,
            "csrf_token": csrf_token(request),
        },
        status_code=status,
    )


@router.get("/tickets/{ticket_id}/macros/preview", response_class=HTMLResponse)
def macro_preview_page(
    request: Request,
    ticket_id: int,
    macro_id: int,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    """Exactly what applying the macro to this ticket would send and change; changes nothing."""
    return _preview_page(request, session, actor, ticket_id, macro_id, errors=[])


@router.post("/tickets/{ticket_id}/macros/{macro_id}/apply", response_model=None)
def apply_macro_page(
    request: Request,
    ticket_id: int,
    macro_id: int,
    preview_digest: str = Form(""),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    """Apply what was previewed (the digest); if the ticket or macro changed meanwhile, nothing is
    applied and the new preview is shown with the reason."""
    try:
        with session.begin_nested():
            ticket = access_ticket(session, actor, ticket_id, for_update=True)
            macros.apply_macro(
                session,
                actor,
                ticket,
                macros.access_macro(session, actor, macro_id),
                preview_digest=preview_digest,
            )
    except DomainError as error:
        if error.status in (403, 404):
            raise
        return _preview_page(
            request, session, actor, ticket_id, macro_id, errors=_problems(error), status=error.status
        )
    return RedirectResponse(f"/tickets/{ticket_id}", status_code=303)


# ------------------------------------------------------------------ the escalation matrix

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


def _stage(minutes: int) -> str:
    if minutes == 0:
        return "At breach"
    if minutes % 60 == 0:
        return f"{minutes // 60} h after breach"
    return f"{minutes} min after breach"


def _escalations_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    form: dict[str, Any],
    errors: list[str],
    status: int = 200,
) -> HTMLResponse:
    tiers = [None, *(tier.value for tier in AccountTier)]
    cells: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for rule in escalations.list_escalations(session, actor):
        cells.setdefault((rule.priority, rule.tier), []).append(
            {
                "id": rule.id,
                "stage": _stage(rule.minutes_after_breach),
                "minutes": rule.minutes_after_breach,
                "notify": ", ".join(rule.notify),
                "slack": bool(rule.slack_webhook_url),
                "pages": rule.page_on_call,
                "active": rule.is_active,
            }
        )
    matrix = [
        {
            "priority": priority.value,
            "cells": [
                sorted(cells.get((priority.value, tier), []), key=lambda row: row["minutes"])
                for tier in tiers
            ],
        }
        for priority in sorted(Priority, key=lambda member: -PRIORITY_RANK[member.value])
    ]
    return render(
        request,
        "automation/escalations.html",
        {
            "tiers": [tier or "" for tier in tiers],
            "matrix": matrix,
            "priorities": [member.value for member in Priority],
            "form": form,
            "errors": errors,
            "csrf_token": csrf_token(request),
        },
        status_code=status,
    )


EMPTY_ESCALATION_FORM: dict[str, Any] = {
    "id": "",
    "priority": "urgent",
    "tier": "",
    "minutes_after_breach": "0",
    "notify": "assignee, group",
    "slack_webhook_url": "",
    "page_on_call": False,
    "paging_url": PAGERDUTY_EVENTS_URL,
    "has_routing_key": False,
    "is_active": True,
}


@router.get("/admin/escalations", response_class=HTMLResponse)
def escalations_page(
    request: Request,
    edit: int | None = None,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    form = dict(EMPTY_ESCALATION_FORM)
    if edit is not None:
        rule = next((row for row in escalations.list_escalations(session, actor) if row.id == edit), None)
        if rule is not None:
            form = {
                "id": str(rule.id),
                "priority": rule.priority,
                "tier": rule.tier or "",
                "minutes_after_breach": str(rule.minutes_after_breach),
                "notify": ", ".join(rule.notify),
                "slack_webhook_url": rule.slack_webhook_url or "",
                "page_on_call": rule.page_on_call,
                "paging_url": rule.paging_url or PAGERDUTY_EVENTS_URL,
                "has_routing_key": bool(rule.paging_routing_key),
                "is_active": rule.is_active,
            }
    return _escalations_page(request, session, actor, form=form, errors=[])


@router.post("/admin/escalations", response_model=None)
def save_escalation_page(
    request: Request,
    rule_id: str = Form(""),
    priority: str = Form(""),
    tier: str = Form(""),
    minutes_after_breach: str = Form("0"),
    notify: str = Form(""),
    slack_webhook_url: str = Form(""),
    page_on_call: bool = Form(False),
    paging_url: str = Form(""),
    paging_routing_key: str = Form(""),
    is_active: bool = Form(False),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    form: dict[str, Any] = {
        "id": rule_id,
        "priority": priority,
        "tier": tier,
        "minutes_after_breach": minutes_after_breach,
        "notify": notify,
        "slack_webhook_url": slack_webhook_url,
        "page_on_call": page_on_call,
        "paging_url": paging_url,
        "has_routing_key": False,
        "is_active": is_active,
    }
    minutes = minutes_after_breach.strip()
    if not minutes.isdigit():
        errors = ["minutes_after_breach: a whole number of minutes (0 = at the breach)"]
        return _escalations_page(request, session, actor, form=form, errors=errors, status=422)
    try:
        with session.begin_nested():
            escalations.save_escalation(
                session,
                actor,
                rule_id=int(rule_id) if rule_id.strip().isdigit() else None,
                priority=priority,
                tier=tier or None,
                minutes_after_breach=int(minutes),
                notify=[target for target in notify.replace("\n", ",").split(",") if target.strip()],
                slack_webhook_url=slack_webhook_url,
                page_on_call=page_on_call,
                paging_url=paging_url,
                paging_routing_key=paging_routing_key,
                is_active=is_active,
            )
    except DomainError as error:
        if error.status in (403, 404):
            raise
        return _escalations_page(request, session, actor, form=form, errors=_problems(error), status=422)
    return RedirectResponse("/admin/escalations", status_code=303)


@router.post("/admin/escalations/{rule_id}/delete", response_model=None)
def delete_escalation_page(
    rule_id: int, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    escalations.delete_escalation(session, actor, rule_id)
    return RedirectResponse("/admin/escalations", status_code=303)
