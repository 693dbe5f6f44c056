"""Pages of the channels domain: the public support form (``/support/new``) and the admin page of
outbound webhooks (deliveries, redeliver); the chat widget and the agents' chat page come from
:mod:`opsdesk.channels.chat_pages`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from opsdesk.auth.actor import Actor
from opsdesk.channels.service import web_form, webhooks
from opsdesk.config import Settings
from opsdesk.web.auth import client_address, csrf_token, page_actor
from opsdesk.web.sessions import database_of, request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/admin/webhooks", response_class=HTMLResponse)
def webhooks_page(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> HTMLResponse:
    subscriptions = webhooks.list_subscriptions(session, actor)
    urls = {subscription.id: subscription.url for subscription in subscriptions}
    deliveries = [
        {
            "id": delivery.id,
            "event_type": delivery.event_type,
            "url": urls.get(delivery.subscription_id, ""),
            "status": delivery.status,
            "attempts": delivery.attempts,
            "status_code": delivery.last_status_code or "—",
            "response_ms": delivery.last_response_ms if delivery.last_response_ms is not None else "—",
            "error": delivery.last_error or "",
            "created_at": delivery.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        }
        for delivery in webhooks.recent_deliveries(session, actor)
    ]
    return render(
        request,
        "channels/webhooks.html",
        {
            "subscriptions": [
                {"id": item.id, "url": item.url, "events": ", ".join(item.events), "active": item.is_active}
                for item in subscriptions
            ],
            "deliveries": deliveries,
            "csrf_token": csrf_token(request),
            "redelivered": request.query_params.get("redelivered"),
        },
    )


@router.post("/admin/webhooks/deliveries/{delivery_id}/redeliver", response_model=None)
def redeliver_from_admin(
    delivery_id: int, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    webhooks.redeliver(session, actor, delivery_id)
    return RedirectResponse(f"/admin/webhooks?redelivered={delivery_id}", status_code=303)


def _form_page(
    request: Request, values: dict[str, str], errors: dict[str, list[str]], status: int, notice: str = ""
) -> HTMLResponse:
    return render(
        request,
        "channels/support_new.html",
        {"values": values, "errors": errors, "notice": notice, "max_files": web_form.MAX_FILES},
        status_code=status,
    )


@router.get("/support/new", response_class=HTMLResponse)
def support_form(request: Request) -> HTMLResponse:
    return _form_page(request, {}, {}, 200)


@router.post("/support/new", response_class=HTMLResponse)
async def submit_support_form(request: Request) -> HTMLResponse:
    form = await request.form()
    values = {name: str(form.get(name) or "") for name in ("name", "email", "subject", "description")}
    files: list[web_form.UploadedFile] = []
    for item in form.getlist("files"):
        if isinstance(item, UploadFile) and item.filename:
            files.append(
                web_form.UploadedFile(
                    item.filename, item.content_type or "application/octet-stream", await item.read()
                )
            )
    submission = web_form.SupportRequest(
        name=values["name"],
        email=values["email"],
        subject=values["subject"],
        description=values["description"],
        honeypot=str(form.get("website") or ""),
        files=files,
    )
    settings: Settings = request.app.state.settings
    database = database_of(request)
    client = client_address(request)

    def accept() -> int | None:
        with database.transaction() as session:
            row = web_form.store_request(session, submission, client, settings)
            raw_id = row.id if row is not None else None
        if raw_id is None:
            return None
        with database.transaction() as session:
            return web_form.process_request(session, raw_id, settings).id

    try:
        ticket_id = await run_in_threadpool(accept)
    except web_form.InvalidSupportRequestError as error:
        errors: dict[str, list[str]] = {}
        for problem in error.fields:
            errors.setdefault(str(problem.location[0]), []).append(problem.message)
        return _form_page(request, values, errors, 422, notice=error.detail)
    except web_form.TooManyRequestsError as error:
        return _form_page(request, values, {}, 429, notice=error.detail)
    context: dict[str, Any] = {"ticket_id": ticket_id, "email": values["email"]}
    return render(request, "channels/support_sent.html", context)


def _include_admin_pages() -> None:
    from opsdesk.channels.admin_pages import router as admin_router

    router.include_router(admin_router)


_include_admin_pages()

# The chat widget script, the agents' live chat page and socket (see chat_pages).
from opsdesk.channels.chat_pages import router as _chat_router  # noqa: E402

router.include_router(_chat_router)
