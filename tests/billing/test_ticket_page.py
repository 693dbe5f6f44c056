"""Billing from the ticket page: the side panel, refunds (within the limit and into the approval
queue), a plan change previewed then confirmed, cancellation, each linked to the ticket in the
audit trail and told to the customer through the billing macros."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import AuditEvent
from opsdesk.automation.models import Macro
from opsdesk.billing.models import Payment, Refund, Subscription
from opsdesk.billing.service import notices, policy
from opsdesk.tickets.models import Message, Ticket
from tests.billing.builders import Billed, make_billed, make_paid_charge
from tests.support.databases import BoundDatabase
from tests.support.factories import make_group, make_ticket, make_user, staff_actor
from tests.support.web import app_client, sign_in

PASSWORD = "correct horse battery"


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> TestClient:
    return app_client(database, tmp_path)


def _ticket_of(db: Session, billed: Billed, **fields: object) -> Ticket:
    ticket = make_ticket(db, subject="About my bill", requester_email=billed.customer.email, **fields)
    ticket.account_id = billed.account.id
    db.flush()
    return ticket


def _public_replies(db: Session, ticket: Ticket) -> list[str]:
    return list(
        db.scalars(
            select(Message.body_text)
            .where(Message.ticket_id == ticket.id, Message.is_public)
            .order_by(Message.id)
        )
    )[1:]


def _ticket_audit(db: Session, ticket: Ticket) -> list[tuple[str, str]]:
    return [
        (row.entity_type, row.action)
        for row in db.scalars(
            select(AuditEvent).where(AuditEvent.ticket_id == ticket.id).order_by(AuditEvent.id)
        )
    ]


def test_refunds_from_the_ticket_page_within_the_limit_and_into_the_queue(
    db: Session, client: TestClient
) -> None:
    admin = staff_actor(make_user(db, role="admin"))
    policy.set_refund_limit(db, admin, role="agent", currency="USD", limit_amount_minor=5_000)
    billed = make_billed(db, seats=3)
    payment = make_paid_charge(db, billed.customer, 9_000)
    ticket = _ticket_of(db, billed)
    user = make_user(db, role="agent", password=PASSWORD)
    csrf = sign_in(client, user.email, PASSWORD)

    page = client.get(f"/tickets/{ticket.id}")
    assert page.status_code == 200
    assert 'id="panel-billing"' in page.text
    assert "Team" in page.text
    assert "USD 20.00 / month / seat" in page.text
    assert "Refund a charge" in page.text
    assert "USD 90.00" in page.text

    partial = client.post(
        f"/billing/tickets/{ticket.id}/refund",
        data={"payment_id": payment.id, "amount": "30.00", "reason": "service_issue", "csrf_token": csrf},
    )
    assert partial.status_code == 303
    assert partial.headers["location"] == f"/tickets/{ticket.id}#panel-billing"
    # The rest (60.00) is above the agent's 50.00: empty amount means all that is left.
    rest = client.post(
        f"/billing/tickets/{ticket.id}/refund",
        data={"payment_id": payment.id, "amount": "", "reason": "goodwill", "csrf_token": csrf},
    )
    assert rest.status_code == 303
    db.expire_all()
    refunds = db.scalars(select(Refund).order_by(Refund.id)).all()
    assert [(item.amount_minor, item.status, item.ticket_id) for item in refunds] == [
        (3_000, "succeeded", ticket.id),
        (6_000, "pending_approval", ticket.id),
    ]
    charged = db.get_one(Payment, payment.id)
    assert (charged.refunded_amount_minor, charged.reserved_amount_minor) == (3_000, 6_000)
    replies = _public_replies(db, ticket)
    assert replies[0].startswith("Hi ")
    assert "We have refunded USD 30.00 to your Visa card ending 4242" in replies[0]
    assert "We have asked for a refund of USD 60.00" in replies[1]
    trail = _ticket_audit(db, ticket)
    assert ("refund", "issued") in trail
    assert ("refund", "approval_requested") in trail
    assert trail.count(("ticket", "macro_applied")) == 2
    shown = client.get(f"/tickets/{ticket.id}")
    assert f"refund {refunds[0].id}: issued" in shown.text
    assert f"refund {refunds[1].id}: approval requested" in shown.text


def test_a_refused_refund_from_the_ticket_changes_nothing(db: Session, client: TestClient) -> None:
    billed = make_billed(db)
    payment = make_paid_charge(db, billed.customer, 9_000)
    other = make_billed(db)
    foreign = make_paid_charge(db, other.customer, 1_000)
    ticket = _ticket_of(db, billed)
    user = make_user(db, role="billing", password=PASSWORD)
    csrf = sign_in(client, user.email, PASSWORD)
    too_much = client.post(
        f"/billing/tickets/{ticket.id}/refund",
        data={"payment_id": payment.id, "amount": "95.00", "reason": "goodwill", "csrf_token": csrf},
    )
    assert too_much.status_code == 422
    assert "Nothing was changed" in too_much.text
    not_an_amount = client.post(
        f"/billing/tickets/{ticket.id}/refund",
        data={"payment_id": payment.id, "amount": "ten", "reason": "goodwill", "csrf_token": csrf},
    )
    assert not_an_amount.status_code == 422
    elsewhere = client.post(
        f"/billing/tickets/{ticket.id}/refund",
        data={"payment_id": foreign.id, "amount": "1.00", "reason": "goodwill", "csrf_token": csrf},
    )
    assert elsewhere.status_code == 404
    db.expire_all()
    assert db.scalars(select(Refund)).all() == []
    assert _public_replies(db, ticket) == []
    assert db.get_one(Payment, payment.id).refunded_amount_minor == 0


def test_plan_change_previewed_and_confirmed_then_canceled_from_the_ticket(
    db: Session, client: TestClient
) -> None:
    billed = make_billed(db, seats=10, start=clock.now() - timedelta(days=3))
    ticket = _ticket_of(db, billed)
    user = make_user(db, role="billing", password=PASSWORD)
    csrf = sign_in(client, user.email, PASSWORD)
    subscription_id = billed.subscription.id

    page = client.get(f"/tickets/{ticket.id}")
    assert "Change plan or seats" in page.text
    assert "Cancel subscription" in page.text
    preview = client.get(
        f"/billing/tickets/{ticket.id}/subscriptions/{subscription_id}/change",
        params={"price_id": billed.premium.id, "seats": 12},
    )
    assert preview.status_code == 200
    assert "Unused time on 10 x Team" in preview.text
    assert "Remaining time on 12 x Business" in preview.text
    assert "Confirm the change" in preview.text
    db.expire_all()
    assert db.get_one(Subscription, subscription_id).seats == 10

    confirmed = client.post(
        f"/billing/tickets/{ticket.id}/subscriptions/{subscription_id}/change",
        data={"price_id": billed.premium.id, "seats": 12, "csrf_token": csrf},
    )
    assert confirmed.status_code == 303
    db.expire_all()
    changed = db.get_one(Subscription, subscription_id)
    assert (changed.price_id, changed.seats) == (billed.premium.id, 12)
    assert "Your subscription is now Business (Monthly) with 12 seat(s)." in _public_replies(db, ticket)[0]

    canceled = client.post(
        f"/billing/tickets/{ticket.id}/subscriptions/{subscription_id}/cancel",
        data={"mode": "at_period_end", "csrf_token": csrf},
    )
    assert canceled.status_code == 303
    again = client.post(
        f"/billing/tickets/{ticket.id}/subscriptions/{subscription_id}/cancel",
        data={"mode": "at_period_end", "csrf_token": csrf},
    )
    assert again.status_code == 422
    db.expire_all()
    assert db.get_one(Subscription, subscription_id).cancel_at_period_end is True
    replies = _public_replies(db, ticket)
    assert len(replies) == 2
    assert "subscription ends on" in replies[1]
    trail = _ticket_audit(db, ticket)
    assert ("subscription", "updated") in trail
    assert [
        row.field
        for row in db.scalars(
            select(AuditEvent).where(
                AuditEvent.ticket_id == ticket.id, AuditEvent.entity_type == "subscription"
            )
        )
    ] == ["price_id", "seats", "cancel_at_period_end"]


def test_contractors_see_the_plan_and_no_payment_details_or_changes(db: Session, client: TestClient) -> None:
    group = make_group(db)
    billed = make_billed(db)
    make_paid_charge(db, billed.customer, 9_000)
    ticket = _ticket_of(db, billed, group_id=group.id)
    user = make_user(db, role="contractor", password=PASSWORD, groups=[group])
    sign_in(client, user.email, PASSWORD)
    page = client.get(f"/tickets/{ticket.id}")
    assert page.status_code == 200
    assert 'id="panel-billing"' in page.text
    assert "Team" in page.text
    assert "4242" not in page.text
    assert "USD 90.00" not in page.text
    assert "Change plan or seats" not in page.text
    assert "Refunds the account's latest charge" in page.text


def test_notices_use_the_teams_edited_macro_and_fall_back_when_it_was_deleted(db: Session) -> None:
    admin = staff_actor(make_user(db, role="admin"))
    billed = make_billed(db)
    make_paid_charge(db, billed.customer, 9_000)
    ticket = _ticket_of(db, billed)
    installed = notices.install_notice_macros(db)
    assert {macro.name for macro in installed} >= {
        "Billing: refund issued",
        "Billing: refund pending approval",
        "Billing: plan change",
        "Billing: cancellation",
        "Billing: payment failed",
        "Billing: dispute opened",
    }
    assert all(macro.owner_id is None for macro in installed)
    assert notices.install_notice_macros(db) == []
    macro = notices.macro_for(db, "refund_issued")
    assert macro is not None
    macro.body_template = "Refund {{ billing.amount }} ({{ billing.currency }}) for {{ ticket.subject }}."
    db.flush()
    notices.reply_on_ticket(
        db, admin, ticket, "refund_issued", customer=billed.customer, amount="USD 5.00", currency="USD"
    )
    assert _public_replies(db, ticket)[-1] == "Refund USD 5.00 (USD) for About my bill."
    assert db.get_one(Macro, macro.id).usage_count == 1

    db.delete(macro)
    db.flush()
    db.expire_all()
    notices.reply_on_ticket(
        db, admin, ticket, "refund_issued", customer=billed.customer, amount="USD 6.00", card="card"
    )
    assert "We have refunded USD 6.00 to your card." in _public_replies(db, ticket)[-1]
    fallback = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "fallback_text_sent", AuditEvent.ticket_id == ticket.id)
    ).one()
    assert fallback.reason is not None
    assert "macro was deleted" in fallback.reason
    # A deleted macro stays deleted: installing again does not bring it back.
    assert notices.install_notice_macros(db) == []
