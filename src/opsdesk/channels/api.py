"""HTTP endpoints of the channels domain under ``/api/v1/channels``.

- ``POST /email/inbound``: a raw MIME message as mail providers' inbound webhooks post it
  (``Authorization: Bearer <inbound key>`` or ``?key=``); stored, then processed like SMTP mail.
- ``POST /slack/events``: Slack's Events API (v0 signature, five-minute replay window,
  ``url_verification``); messages in connected channels open tickets, thread replies add to them.
- ``/webhooks`` and ``/webhook-deliveries``: outbound webhook subscriptions, the delivery log and
  redelivery (admins).
- ``/chat/brands/{key}`` and ``WS /chat/ws``: the chat widget (:mod:`opsdesk.channels.chat_api`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.channels import inbound_pipeline
from opsdesk.channels.errors import InboundAuthenticationError, InvalidInboundError
from opsdesk.channels.inbound_keys import is_valid_inbound_key
from opsdesk.channels.service import webhooks
from opsdesk.config import Settings
from opsdesk.db import Database
from opsdesk.errors import FieldProblem
from opsdesk.web.auth import api_actor
from opsdesk.web.sessions import database_of, request_session

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("/email/inbound", status_code=status.HTTP_202_ACCEPTED)
async def receive_raw_email(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    key: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """Take one raw RFC 5322 message (``message/rfc822``) and file it onto its ticket."""
    settings = _settings(request)
    presented = key or (authorization or "").removeprefix("Bearer ").strip()
    if not presented or not is_valid_inbound_key(settings.secret_key, presented):
        raise InboundAuthenticationError("a valid inbound email key is required (Authorization: Bearer …)")
    raw = await request.body()
    if not raw.strip():
        raise InvalidInboundError(
            "the request body must be a raw email", fields=[FieldProblem(("body",), "must not be empty")]
        )
    from starlette.concurrency import run_in_threadpool

    result = await run_in_threadpool(
        inbound_pipeline.ingest_email, database_of(request), raw, source="http", settings=settings
    )
    return {
        "raw_inbound_id": result.raw_inbound_id,
        "status": result.status,
        "duplicate": result.duplicate,
        "ticket_id": result.ticket_id,
    }


class WebhookIn(BaseModel):
    url: str = Field(max_length=2000)
    events: list[str] = Field(min_length=1)
    description: str = ""


@router.post("/webhooks", status_code=status.HTTP_201_CREATED)
def create_webhook(
    body: WebhookIn, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> dict[str, Any]:
    """Subscribe a URL to ticket events; the answer holds the signing secret (shown once)."""
    subscription = webhooks.create_subscription(
        session, actor, url=body.url, events=body.events, description=body.description
    )
    return {
        "id": subscription.id,
        "url": subscription.url,
        "events": subscription.events,
        "secret": subscription.secret,
    }


@router.get("/webhook-deliveries")
def list_deliveries(
    actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> list[dict[str, Any]]:
    return [
        {
            "id": delivery.id,
            "event_id": delivery.event_id,
            "event_type": delivery.event_type,
            "subscription_id": delivery.subscription_id,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "last_status_code": delivery.last_status_code,
            "last_response_ms": delivery.last_response_ms,
            "last_error": delivery.last_error,
        }
        for delivery in webhooks.recent_deliveries(session, actor)
    ]


@router.post("/webhook-deliveries/{delivery_id}/redeliver", status_code=status.HTTP_202_ACCEPTED)
def redeliver_webhook(
    delivery_id: int, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> dict[str, Any]:
    delivery = webhooks.redeliver(session, actor, delivery_id)
    return {"id": delivery.id, "status": "queued"}


def _signing_secrets(database: Database, settings: Settings, body: bytes) -> list[str]:
    import json

    from opsdesk.channels.service.slack import signing_secrets_for

    try:
        claimed = json.loads(body)
    except ValueError:
        claimed = {}
    team_id = str(claimed.get("team_id") or "") if isinstance(claimed, dict) else ""
    with database.transaction(write=False) as session:
        return signing_secrets_for(session, settings, team_id)


@router.post("/slack/events")
async def slack_events(request: Request) -> dict[str, Any]:
    """Slack's Events API endpoint. Answers fast; the event is stored before it is processed."""
    import json

    from starlette.concurrency import run_in_threadpool

    from opsdesk import clock
    from opsdesk.channels.slack_signing import check_slack_signature

    settings = _settings(request)
    body = await request.body()
    secrets = await run_in_threadpool(_signing_secrets, database_of(request), settings, body)
    if not secrets:
        raise InboundAuthenticationError(
            "Slack is not configured (a connection's signing secret or OPSDESK_SLACK_SIGNING_SECRET)"
        )
    reason: str | None = None
    for secret in secrets:  # the claimed workspace only picks the secret; the signature decides
        reason = check_slack_signature(
            secret,
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
            body,
            now=int(clock.now().timestamp()),
        )
        if reason is None:
            break
    if reason is not None:
        raise InboundAuthenticationError(f"Slack signature refused: {reason}")
    try:
        envelope = json.loads(body)
    except ValueError as error:
        raise InvalidInboundError(
            "the body is not JSON", fields=[FieldProblem(("body",), "must be a JSON object")]
        ) from error
    if not isinstance(envelope, dict):
        raise InvalidInboundError("the body is not a JSON object", fields=[FieldProblem(("body",), "object")])
    if envelope.get("type") == "url_verification":
        return {"challenge": str(envelope.get("challenge", ""))}
    if envelope.get("type") != "event_callback":
        return {"ok": True, "ignored": str(envelope.get("type"))}
    from opsdesk.channels import slack_pipeline

    outcome = await run_in_threadpool(slack_pipeline.ingest_event, database_of(request), settings, envelope)
    return {
        "ok": True,
        "status": outcome.status,
        "ticket_id": outcome.ticket_id,
        "duplicate": outcome.duplicate,
    }


def _include_settings_api() -> None:
    from opsdesk.channels.settings_api import router as settings_router

    router.include_router(settings_router)


_include_settings_api()

# The chat widget's settings endpoint and the visitor's WebSocket (see chat_api).
from opsdesk.channels.chat_api import router as _chat_router  # noqa: E402

router.include_router(_chat_router)
