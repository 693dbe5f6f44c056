"""Outbound webhooks: subscriptions to ticket events, signed deliveries, retries, a delivery log.

Invariants: a delivery row (with a stable ``event_id`` that receivers use to drop repeats) and its
first outbox job are written in the transaction of the change that raised the event, so a rolled
back change sends nothing and a committed one is never lost; every try is logged (status code,
response time, error); a failed try schedules the next one through the outbox with exponential
backoff (:func:`opsdesk.jobs.backoff.retry_delay`) until ``MAX_ATTEMPTS``, then the delivery is
``failed``; an admin may redeliver any delivery, which logs a manual try.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock, config_cache, outbox
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.channels.errors import InvalidInboundError
from opsdesk.channels.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from opsdesk.channels.webhook_signing import SIGNATURE_HEADER, sign
from opsdesk.errors import FieldProblem, NotFoundError
from opsdesk.jobs.backoff import retry_delay
from opsdesk.tickets.events import MessageAdded, TicketCreated, TicketMerged, TicketUpdated

WEBHOOK_JOB = "webhook.deliver"
MAX_ATTEMPTS = 8
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
EVENT_TYPES: dict[type, str] = {
    TicketCreated: "ticket.created",
    MessageAdded: "ticket.message_added",
    TicketUpdated: "ticket.updated",
    TicketMerged: "ticket.merged",
}


class WebhookNotFoundError(NotFoundError):
    code = "webhook_not_found"


def create_subscription(
    session: Session, actor: Actor, *, url: str, events: Sequence[str], description: str = ""
) -> WebhookSubscription:
    require(actor, Permission.CHANNEL_MANAGE)
    problems: list[FieldProblem] = []
    parsed = httpx.URL(url) if url else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        problems.append(FieldProblem(("url",), "must be an http(s) URL"))
    known = set(EVENT_TYPES.values()) | {"*"}
    unknown = [event for event in events if event not in known]
    if not events or unknown:
        problems.append(
            FieldProblem(
                ("events",),
                f"choose from {', '.join(sorted(known))}" + (f"; unknown: {unknown}" if unknown else ""),
            )
        )
    if problems:
        raise InvalidInboundError("the webhook is not valid", fields=problems)
    subscription = WebhookSubscription(
        url=url,
        secret=f"whsec_{secrets.token_urlsafe(24)}",
        events=sorted(set(events)),
        description=description[:200],
        created_at=clock.now(),
    )
    session.add(subscription)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="webhook",
        entity_id=subscription.id,
        action="created",
        new={"url": url, "events": subscription.events},
    )
    return subscription


def _event_data(event: object) -> dict[str, Any]:
    data = asdict(event) if is_dataclass(event) and not isinstance(event, type) else {}
    cleaned: dict[str, Any] = json.loads(json.dumps(data, default=str))  # changes may hold datetimes
    return cleaned


def _active_subscriptions(session: Session) -> tuple[tuple[int, frozenset[str]], ...]:
    """(id, event types) of the active subscriptions; cached per process (every event asks)."""
    return tuple(
        (subscription_id, frozenset(events or ()))
        for subscription_id, events in session.execute(
            select(WebhookSubscription.id, WebhookSubscription.events)
            .where(WebhookSubscription.is_active.is_(True))
            .order_by(WebhookSubscription.id)
        )
    )


def _subscriptions(session: Session) -> tuple[tuple[int, frozenset[str]], ...]:
    return config_cache.cached(session, "channels.webhook_subscriptions", _active_subscriptions)


def queue_deliveries(session: Session, event: object) -> list[WebhookDelivery]:
    """Reaction to ticket events: one delivery per subscription that wants this event type."""
    event_type = EVENT_TYPES.get(type(event))
    if event_type is None:
        return []
    subscriptions = _subscriptions(session)
    deliveries: list[WebhookDelivery] = []
    now = clock.now()
    for subscription_id, subscribed in subscriptions:
        if "*" not in subscribed and event_type not in subscribed:
            continue
        event_id = f"evt_{uuid.uuid4().hex}"
        delivery = WebhookDelivery(
            subscription_id=subscription_id,
            event_id=event_id,
            event_type=event_type,
            payload={
                "id": event_id,
                "type": event_type,
                "created_at": now.isoformat(),
                "data": _event_data(event),
            },
            status="pending",
            created_at=now,
        )
        session.add(delivery)
        session.flush()
        _queue_attempt(session, delivery, number=1)
        deliveries.append(delivery)
    return deliveries


def queue_for_event(session: Session, event: object) -> None:
    queue_deliveries(session, event)


def queue_for_events(session: Session, events: Sequence[object]) -> None:
    """``queue_for_event`` for a bulk change: the subscriptions are read once, and when none wants
    this event type nothing more is done."""
    if not events:
        return
    event_type = EVENT_TYPES.get(type(events[0]))
    wanted = event_type is not None and any(
        "*" in subscribed or event_type in subscribed for _id, subscribed in _subscriptions(session)
    )
    if not wanted:
        return
    for event in events:
        queue_deliveries(session, event)


def _queue_attempt(
    session: Session, delivery: WebhookDelivery, *, number: int, manual: bool = False, delayed: bool = False
) -> None:
    run_at = clock.now() + retry_delay(number - 1) if delayed else clock.now()
    round_name = f"manual-{uuid.uuid4().hex}" if manual else "auto"
    outbox.enqueue(
        session,
        WEBHOOK_JOB,
        {"delivery_id": delivery.id, "attempt": number, "manual": manual},
        idempotency_key=f"{WEBHOOK_JOB}:{delivery.id}:{number}:{round_name}",
        run_at=run_at,
        max_attempts=1,  # the retry schedule is this module's, so each try is one job
    )


def attempt_delivery(session: Session, delivery_id: int, *, manual: bool = False) -> WebhookAttempt:
    """POST the delivery now, log the try, schedule the next one if it failed."""
    delivery = session.get_one(WebhookDelivery, delivery_id)
    subscription = session.get_one(WebhookSubscription, delivery.subscription_id)
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(clock.now().timestamp())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(subscription.secret, timestamp, body),
        "Opsdesk-Event-Id": delivery.event_id,
        "Opsdesk-Event-Type": delivery.event_type,
        "Idempotency-Key": delivery.event_id,
        "User-Agent": "opsdesk-webhooks/1",
    }
    started = time.perf_counter()
    status_code: int | None = None
    error: str | None = None
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            response = client.post(subscription.url, content=body, headers=headers)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"answered {status_code}: {response.text[:200]}"
    except httpx.HTTPError as failure:
        error = f"{type(failure).__name__}: {failure}"[:500]
    elapsed_ms = int((time.perf_counter() - started) * 1000)
    delivery.attempts = (delivery.attempts or 0) + 1
    attempt = WebhookAttempt(
        delivery_id=delivery.id,
        attempted_at=clock.now(),
        status_code=status_code,
        response_ms=elapsed_ms,
        error=error,
        manual=manual,
    )
    session.add(attempt)
    delivery.last_status_code = status_code
    delivery.last_response_ms = elapsed_ms
    delivery.last_error = error
    if error is None:
        delivery.status = "succeeded"
        delivery.delivered_at = clock.now()
    elif manual or delivery.status == "succeeded":
        pass  # a manual redelivery does not restart the automatic schedule
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
    else:
        _queue_attempt(session, delivery, number=delivery.attempts + 1, delayed=True)
    session.flush()
    return attempt


def redeliver(session: Session, actor: Actor, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now (from the admin page or the API), whatever its status."""
    require(actor, Permission.CHANNEL_MANAGE)
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise WebhookNotFoundError(f"webhook delivery {delivery_id} does not exist")
    _queue_attempt(session, delivery, number=(delivery.attempts or 0) + 1, manual=True)
    audit.record(session, actor, entity_type="webhook_delivery", entity_id=delivery.id, action="redelivered")
    return delivery


def list_subscriptions(session: Session, actor: Actor) -> list[WebhookSubscription]:
    require(actor, Permission.CHANNEL_MANAGE)
    return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def recent_deliveries(session: Session, actor: Actor, *, limit: int = 100) -> list[WebhookDelivery]:
    require(actor, Permission.CHANNEL_MANAGE)
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)))


def attempts_of(session: Session, actor: Actor, delivery_id: int) -> list[WebhookAttempt]:
    require(actor, Permission.CHANNEL_MANAGE)
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
    )
