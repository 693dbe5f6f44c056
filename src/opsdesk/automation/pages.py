"""Pages of automation: rule and macro editors (validated before they are saved), the dead
letters of the job runner (with a retry button), and previewing / applying a macro on a ticket."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.automation import macros, rules
from opsdesk.automation.ticket_panels import change_rows
from opsdesk.errors import DomainError
from opsdesk.jobs import service as jobs_service
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
