"""Billing pages through the real ASGI app with a signed-in browser session."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.billing.models import Payment, Refund
from opsdesk.billing.service import disputes, policy
from opsdesk.billing.service.disputes import DisputeFacts
from opsdesk.tickets.models import Message
from tests.billing.builders import make_billed, make_paid_charge
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_group, make_ticket, make_user, staff_actor
from tests.support.web import app_client, sign_in

PASSWORD = "correct horse battery"


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> TestClient:
    return app_client(database, tmp_path)


def test_overview_subscription_preview_and_dispute_pages(db: Session, client: TestClient) -> None:
    billed = make_billed(db, seats=10, start=clock.now() - timedelta(days=2))
    payment = make_paid_charge(db, billed.customer, 4_000, charge_id="ch_page")
    disputes.open_dispute(
        db,
        SYSTEM,
        DisputeFacts(
            "dp_page", "ch_page", 4_000, "USD", "duplicate", "needs_response", clock.now() + timedelta(days=7)
        ),
        payment=payment,
    )
    user = make_user(db, role="billing", password=PASSWORD)
    sign_in(client, user.email, PASSWORD)

    overview = client.get("/billing")
    assert overview.status_code == 200
    assert "Chargeback" in overview.text
    assert "USD 40.00" in overview.text

    preview = client.get(
        f"/billing/subscriptions/{billed.subscription.id}",
        params={"price_id": billed.premium.id, "seats": 12},
    )
    assert preview.status_code == 200
    assert "Unused time on 10 x Team" in preview.text
    assert "Remaining time on 12 x Business" in preview.text
    refused = client.get(f"/billing/subscriptions/{billed.subscription.id}", params={"seats": 10})
    assert "nothing would change" in refused.text

    dispute_id = disputes.list_disputes(db, SYSTEM)[0].id
    page = client.get(f"/billing/disputes/{dispute_id}")
    assert page.status_code == 200
    assert "customer_email_address" in page.text


def test_refund_from_the_ticket_page_tells_the_customer(db: Session, client: TestClient) -> None:
    admin = staff_actor(make_user(db, role="admin"))
    policy.set_refund_limit(db, admin, role="agent", currency="USD", limit_amount_minor=5_000)
    billed = make_billed(db)
    make_paid_charge(db, billed.customer, 9_000)
    ticket = make_ticket(db, subject="Please refund", requester_email=billed.customer.email)
    ticket.account_id = billed.account.id
    db.flush()
    user = make_user(db, role="agent", password=PASSWORD)
    csrf = sign_in(client, user.email, PASSWORD)

    page = client.get(f"/billing/tickets/{ticket.id}")
    assert page.status_code == 200
    assert "visa •••• 4242" in page.text
    too_much = client.post(
        f"/billing/tickets/{ticket.id}/refund",
        data={"amount": "95.00", "reason": "goodwill", "csrf_token": csrf},
    )
    assert too_much.status_code == 422
    assert "at most 9000" in too_much.text
    assert db.scalars(select(Refund)).all() == []
    done = client.post(
        f"/billing/tickets/{ticket.id}/refund",
        data={"amount": "30.00", "reason": "service_issue", "csrf_token": csrf},
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/tickets/{ticket.id}#panel-billing"
    assert db.scalars(select(Payment.refunded_amount_minor)).one() == 3_000
    replies = db.scalars(
        select(Message.body_text).where(Message.ticket_id == ticket.id, Message.is_public)
    ).all()
    assert any("USD 30.00" in body for body in replies)


def test_contractors_see_the_plan_but_no_payment_details(db: Session, client: TestClient) -> None:
    group = make_group(db)
    billed = make_billed(db)
    make_paid_charge(db, billed.customer, 9_000)
    ticket = make_ticket(
        db, subject="Plan question", requester_email=billed.customer.email, group_id=group.id
    )
    ticket.account_id = billed.account.id
    db.flush()
    user = make_user(db, role="contractor", password=PASSWORD, groups=[group])
    sign_in(client, user.email, PASSWORD)
    page = client.get(f"/billing/tickets/{ticket.id}")
    assert page.status_code == 200
    assert "Team" in page.text
    assert "4242" not in page.text
    assert "USD 90.00" not in page.text
    assert client.get("/billing").status_code == 403


def test_reconciliation_page_runs_a_csv_and_opens_tickets(db: Session, client: TestClient) -> None:
    billed = make_billed(db, provider="stripe")
    make_paid_charge(db, billed.customer, 5_000, charge_id="ch_recon_1")
    user = make_user(db, role="billing", password=PASSWORD)
    csrf = sign_in(client, user.email, PASSWORD)
    export = (
        "id,Amount,Amount Refunded,Currency,Status,Customer ID\n"
        f"ch_recon_1,50.00,10.00,usd,Paid,{billed.customer.stripe_customer_id}\n"
    )
    answer = client.post(
        "/billing/reconciliation",
        data={"source": "csv", "csrf_token": csrf},
        files={"file": ("charges.csv", export.encode(), "text/csv")},
    )
    assert answer.status_code == 303
    page = client.get(answer.headers["location"])
    assert "refund not reflected" in page.text
    assert "ch_recon_1" in page.text
    bad = client.post(
        "/billing/reconciliation",
        data={"source": "csv", "csrf_token": csrf},
        files={"file": ("x.csv", b"what,is,this\n1,2,3\n", "text/csv")},
    )
    assert bad.status_code == 422
    assert "Stripe charges export" in bad.text
