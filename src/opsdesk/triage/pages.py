"""Triage pages: accuracy and model versions (train, activate, roll back), the taxonomy editor
(add, rename, retire, bring back; target precision), routing rules with a dry run, and a ticket's
triage panel (category, confidence, the words behind it) with the "correct the category" form.

Refused edits re-render the page with the reasons (422) inside a rolled-back savepoint, so they
change nothing."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission, require
from opsdesk.errors import DomainError
from opsdesk.tickets.service import access_ticket
from opsdesk.triage.service import accuracy, classification, registry, routing, settings, taxonomy
from opsdesk.triage.ticket_panels import correction_view, prediction_view
from opsdesk.web.auth import csrf_token, page_actor
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _error_lines(error: DomainError) -> list[str]:
    lines = [error.detail]
    lines.extend(f"{'.'.join(map(str, field.location))}: {field.message}" for field in error.fields)
    return lines


def _accuracy_view(request: Request, session: Session, actor: Actor, days: int) -> dict[str, Any]:
    report = accuracy.accuracy_report(session, actor, days=days)
    models = registry.list_models(session)
    current = settings.triage_settings(session)
    return {
        "days": days,
        "summary": {
            "model": f"version {report.model_version}"
            if report.model_version
            else "keyword rules (cold start)",
            "classified": report.classified,
            "precision": _percent(report.precision),
            "override_rate": _percent(report.override_rate),
            "handoff_rate": _percent(report.handoff_rate),
            "auto": report.auto,
            "handoff": report.handoff,
            "kept": report.kept,
        },
        "categories": [
            {
                "name": item.category,
                "predicted": item.predicted,
                "correct": item.correct,
                "precision": _percent(item.precision),
                "auto": item.auto,
                "overridden": item.overridden,
            }
            for item in report.categories
        ],
        "models": [
            {
                "version": row.version,
                "kind": row.kind,
                "active": row.is_active,
                "n_train": row.n_train,
                "accuracy": _percent(row.accuracy),
                "baseline": _percent(row.baseline_accuracy),
                "macro_f1": f"{row.macro_f1:.3f}",
                "trained_at": row.trained_at.strftime("%Y-%m-%d %H:%M UTC"),
                "notes": row.notes,
            }
            for row in models
        ],
        "target_precision": f"{current.target_precision:.2f}",
        "csrf_token": csrf_token(request),
        "message": request.query_params.get("message"),
    }


@router.get("/triage", response_class=HTMLResponse)
def accuracy_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    days = (
        int(request.query_params.get("days", "30"))
        if request.query_params.get("days", "30").isdigit()
        else 30
    )
    return render(
        request, "triage/accuracy.html", _accuracy_view(request, session, actor, max(1, min(days, 365)))
    )


def _redirect(message: str) -> RedirectResponse:
    from urllib.parse import quote

    return RedirectResponse(f"/triage?message={quote(message)}", status_code=303)


@router.post("/triage/train", response_model=None)
def train_from_page(
    kind: str | None = Form(None),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    try:
        job = registry.request_training(session, actor, kind=kind)
    except DomainError as error:
        return _redirect(error.detail)
    return _redirect(f"Training queued (job {job.id}); the new version appears here when it is done.")


@router.post("/triage/models/{version}/activate", response_model=None)
def activate_from_page(
    version: int, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    try:
        registry.activate_version(session, actor, version)
    except DomainError as error:
        return _redirect(error.detail)
    return _redirect(f"Version {version} is active.")


@router.post("/triage/rollback", response_model=None)
def rollback_from_page(
    actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    try:
        row = registry.rollback(session, actor)
    except DomainError as error:
        return _redirect(error.detail)
    return _redirect(f"Rolled back to version {row.version}." if row else "Rolled back to the keyword rules.")


def _rules_view(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    text: str | None = None,
    errors: list[str] | None = None,
    saved: bool = False,
) -> dict[str, Any]:
    rows = routing.list_rules(session)
    submitted = [
        {"name": row.name, "match": row.match, "conditions": row.conditions, "actions": row.actions}
        for row in rows
    ]
    view: dict[str, Any] = {
        "rules": [
            {
                "position": row.position + 1,
                "name": row.name,
                "match": row.match,
                "conditions": [
                    f"{item.get('field')} {str(item.get('op', '')).replace('_', ' ')} {item.get('value')!r}"
                    for item in row.conditions or []
                ]
                or ["every ticket"],
                "actions": ", ".join(f"{key} = {value}" for key, value in (row.actions or {}).items()),
            }
            for row in rows
        ],
        "text": text if text is not None else json.dumps(submitted, indent=2),
        "errors": errors or [],
        "saved": saved,
        "csrf_token": csrf_token(request),
        "dry_run": None,
    }
    ticket_id = request.query_params.get("ticket_id", "")
    if ticket_id.isdigit():
        try:
            ticket = access_ticket(session, actor, int(ticket_id))
            evaluation = routing.dry_run(session, actor, ticket)
            view["dry_run"] = {
                "ticket_id": ticket.id,
                "explanation": evaluation.explanation,
                "trace": [
                    {"name": item.name, "matched": item.matched, "reasons": list(item.reasons)}
                    for item in evaluation.trace
                ],
            }
        except DomainError as error:
            view["errors"] = _error_lines(error)
    return view


@router.get("/triage/rules", response_class=HTMLResponse)
def rules_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    require(actor, Permission.TICKET_READ)
    return render(
        request,
        "triage/rules.html",
        _rules_view(request, session, actor, saved="saved" in request.query_params),
    )


@router.post("/triage/rules", response_model=None)
def save_rules_page(
    request: Request,
    rules: str = Form(...),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    try:
        parsed = json.loads(rules)
    except json.JSONDecodeError as error:
        view = _rules_view(request, session, actor, text=rules, errors=[f"not valid JSON: {error}"])
        return render(request, "triage/rules.html", view, status_code=422)
    if not isinstance(parsed, list):
        view = _rules_view(
            request, session, actor, text=rules, errors=["the rule set is a JSON list of rules"]
        )
        return render(request, "triage/rules.html", view, status_code=422)
    try:
        with session.begin_nested():  # a refused set must leave nothing behind
            routing.save_rule_set(session, actor, parsed)
    except DomainError as error:
        view = _rules_view(request, session, actor, text=rules, errors=_error_lines(error))
        return render(request, "triage/rules.html", view, status_code=422)
    return RedirectResponse("/triage/rules?saved=1", status_code=303)


def _ticket_view(
    request: Request, session: Session, actor: Actor, ticket_id: int, errors: list[str] | None = None
) -> dict[str, Any]:
    ticket = access_ticket(session, actor, ticket_id)
    prediction = classification.prediction_for(session, ticket.id)
    return {
        "ticket": {"id": ticket.id, "subject": ticket.subject, "category": ticket.category},
        "prediction": prediction_view(prediction),
        "correction": correction_view(session, actor, ticket, prediction),
        "csrf_token": csrf_token(request),
        "errors": errors or [],
    }


@router.get("/triage/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_panel(
    ticket_id: int,
    request: Request,
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> HTMLResponse:
    return render(request, "triage/ticket.html", _ticket_view(request, session, actor, ticket_id))


@router.post("/triage/tickets/{ticket_id}/category", response_model=None)
def correct_category_page(
    ticket_id: int,
    request: Request,
    category: str = Form(""),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    """The "correct the category" form of the ticket page's triage panel."""
    try:
        with session.begin_nested():
            classification.correct_category(session, actor, ticket_id, category)
    except DomainError as error:
        if error.status == 404:
            raise
        view = _ticket_view(request, session, actor, ticket_id, errors=_error_lines(error))
        return render(request, "triage/ticket.html", view, status_code=error.status)
    return RedirectResponse(f"/tickets/{ticket_id}#panel-triage", status_code=303)


# ---------------------------------------------------------------- taxonomy editor


def _taxonomy_view(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    errors: list[str] | None = None,
    typed: dict[str, str] | None = None,
) -> dict[str, Any]:
    rows = taxonomy.list_categories(session)
    parents = [row for row in rows if row.parent_path is None]
    children: dict[str, list[Any]] = {}
    for row in rows:
        if row.parent_path is not None:
            children.setdefault(row.parent_path, []).append(row)

    def shaped(row: Any, depth: int) -> dict[str, Any]:
        return {"id": row.id, "path": row.path, "label": row.label, "active": row.is_active, "depth": depth}

    ordered: list[dict[str, Any]] = []
    for parent in parents:
        ordered.append(shaped(parent, 0))
        ordered.extend(shaped(child, 1) for child in children.get(parent.path, []))
    current = settings.triage_settings(session)
    return {
        "categories": ordered,
        "parents": [row.path for row in parents if row.is_active],
        "target_precision": (typed or {}).get("target_precision", f"{current.target_precision:.3g}"),
        "typed": typed or {},
        "may_edit": has_permission(actor, Permission.FIELD_MANAGE),
        "errors": errors or [],
        "message": request.query_params.get("message"),
        "csrf_token": csrf_token(request),
    }


@router.get("/triage/taxonomy", response_class=HTMLResponse)
def taxonomy_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    require(actor, Permission.TICKET_READ)
    return render(request, "triage/taxonomy.html", _taxonomy_view(request, session, actor))


def _taxonomy_refused(
    request: Request, session: Session, actor: Actor, error: DomainError, typed: dict[str, str]
) -> HTMLResponse:
    view = _taxonomy_view(request, session, actor, errors=_error_lines(error), typed=typed)
    return render(request, "triage/taxonomy.html", view, status_code=error.status)


def _taxonomy_done(message: str) -> RedirectResponse:
    from urllib.parse import quote

    return RedirectResponse(f"/triage/taxonomy?message={quote(message)}", status_code=303)


@router.post("/triage/taxonomy/categories", response_model=None)
def add_category_page(
    request: Request,
    path: str = Form(""),
    label: str = Form(""),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    try:
        with session.begin_nested():
            row = taxonomy.create_category(session, actor, path=path, label=label.strip() or None)
    except DomainError as error:
        return _taxonomy_refused(request, session, actor, error, {"path": path, "label": label})
    return _taxonomy_done(f"Added {row.label} ({row.path}).")


@router.post("/triage/taxonomy/categories/{category_id}", response_model=None)
def edit_category_page(
    category_id: int,
    request: Request,
    label: str = Form(""),
    action: str = Form("rename"),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    active = {"retire": False, "restore": True}.get(action)
    try:
        with session.begin_nested():
            row = taxonomy.update_category(
                session, actor, category_id, label=label if action == "rename" else None, active=active
            )
    except DomainError as error:
        if error.status == 404:
            raise
        return _taxonomy_refused(request, session, actor, error, {f"label_{category_id}": label})
    done = {"retire": "Retired", "restore": "Brought back"}.get(action, "Saved")
    return _taxonomy_done(f"{done} {row.label} ({row.path}).")


@router.post("/triage/taxonomy/precision", response_model=None)
def target_precision_page(
    request: Request,
    target_precision: str = Form(""),
    actor: Actor = Depends(page_actor),
    session: Session = Depends(request_session),
) -> Response:
    typed = {"target_precision": target_precision}
    try:
        with session.begin_nested():
            row = settings.update_triage_settings(session, actor, target_precision=target_precision)
    except DomainError as error:
        return _taxonomy_refused(request, session, actor, error, typed)
    return _taxonomy_done(f"Target precision is {row.target_precision:g}; hand-off thresholds were re-tuned.")
