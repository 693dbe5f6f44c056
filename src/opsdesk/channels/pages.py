"""Pages of the channels domain: the admin page of outbound webhooks (deliveries, redeliver)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.channels.service import webhooks
from opsdesk.web.auth import csrf_token, page_actor
from opsdesk.web.sessions import request_session
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
