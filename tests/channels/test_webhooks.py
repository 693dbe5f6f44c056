"""Outbound webhooks: ticket events reach a local HTTP server signed (HMAC-SHA256 with a
timestamp), failures are retried with backoff through the job runner and logged with status and
response time, an admin can redeliver; bad subscriptions are refused and change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from opsdesk import clock
from opsdesk.channels.errors import InvalidInboundError
from opsdesk.channels.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from opsdesk.channels.service import webhooks
from opsdesk.channels.webhook_signing import verify
from opsdesk.jobs.runner import run_pending
from opsdesk.outbox import OutboxJob
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_ticket, make_user, staff_actor
from tests.support.http_receiver import http_receiver


def test_ticket_events_are_delivered_signed(database: BoundDatabase) -> None:
    with http_receiver() as receiver:
        with database.transaction() as session:
            subscription = webhooks.create_subscription(
                session, SYSTEM, url=f"{receiver.url}/hooks", events=["ticket.created"]
            )
            secret = subscription.secret
            ticket = make_ticket(session, subject="Webhook me")
        run_pending(database)

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.path == "/hooks"
    body = request.json()
    assert body["type"] == "ticket.created"
    assert body["data"]["ticket_id"] == ticket.id
    assert request.headers["opsdesk-event-id"] == body["id"]
    assert verify(
        secret, request.headers["opsdesk-signature"], request.body, now=int(clock.now().timestamp())
    )
    assert not verify(
        "wrong", request.headers["opsdesk-signature"], request.body, now=int(clock.now().timestamp())
    )
    # an old signature is refused (replay window)
    assert not verify(
        secret, request.headers["opsdesk-signature"], request.body, now=int(clock.now().timestamp()) + 600
    )
    with database.transaction(write=False) as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
        assert delivery.last_response_ms is not None


def test_failed_deliveries_are_retried_with_backoff_and_logged(database: BoundDatabase) -> None:
    with http_receiver(statuses=[500, 503, 200]) as receiver:
        with database.transaction() as session:
            webhooks.create_subscription(session, SYSTEM, url=receiver.url, events=["*"])
            agent = make_user(session)
            ticket = make_ticket(session)
            from opsdesk.tickets import service as tickets

            tickets.add_message(session, staff_actor(agent), ticket, body_text="hello", public=False)
        with clock.frozen(clock.now()) as frozen:
            run_pending(database)
            with database.transaction(write=False) as session:
                deliveries = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
                assert [item.event_type for item in deliveries] == ["ticket.created", "ticket.message_added"]
                waiting = session.scalars(
                    select(OutboxJob).where(
                        OutboxJob.kind == "webhook.deliver", OutboxJob.status == "pending"
                    )
                ).all()
                # the first delivery failed once (500) and waits; the second got 503 and waits
                assert len(waiting) == 2
                assert all(job.run_at > clock.now() for job in waiting)
            frozen.advance(timedelta(minutes=5))
            run_pending(database)

    with database.transaction(write=False) as session:
        deliveries = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        assert [(item.status, item.attempts) for item in deliveries] == [("succeeded", 2), ("succeeded", 2)]
        codes = session.scalars(select(WebhookAttempt.status_code).order_by(WebhookAttempt.id)).all()
        assert codes == [500, 503, 200, 200]
        errors = session.scalars(select(WebhookAttempt.error).order_by(WebhookAttempt.id)).all()
        assert errors[0] is not None
        assert errors[0].startswith("answered 500")


def test_admin_redelivers_a_delivery(database: BoundDatabase) -> None:
    with http_receiver() as receiver:
        with database.transaction() as session:
            webhooks.create_subscription(session, SYSTEM, url=receiver.url, events=["ticket.created"])
            make_ticket(session)
        run_pending(database)
        with database.transaction() as session:
            delivery = session.scalars(select(WebhookDelivery)).one()
            admin = make_user(session, role="admin")
            webhooks.redeliver(session, staff_actor(admin), delivery.id)
        run_pending(database)

    assert len(receiver.requests) == 2
    assert receiver.requests[0].json()["id"] == receiver.requests[1].json()["id"]  # same event id
    with database.transaction(write=False) as session:
        manual = session.scalars(select(WebhookAttempt.manual).order_by(WebhookAttempt.id)).all()
        assert manual == [False, True]


def test_agents_may_not_manage_webhooks_and_bad_input_changes_nothing(database: BoundDatabase) -> None:
    from opsdesk.auth.errors import PermissionDeniedError

    with database.transaction() as session:
        agent = make_user(session, role="agent")
    with database.transaction() as session, pytest.raises(PermissionDeniedError):
        webhooks.create_subscription(session, staff_actor(agent), url="https://x.example/h", events=["*"])
    with database.transaction() as session, pytest.raises(InvalidInboundError) as refused:
        webhooks.create_subscription(session, SYSTEM, url="ftp://x", events=["ticket.exploded"])
    assert [problem.location for problem in refused.value.fields] == [("url",), ("events",)]
    with database.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(WebhookSubscription)) == 0
