"""The Stripe provider through the real SDK against a local server, and signed webhooks through
the real ASGI app: stored before processing, idempotent by event id, bad signatures refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.billing import webhook_signature
from opsdesk.billing.errors import ProviderError
from opsdesk.billing.models import Dispute, Invoice, Payment, StripeEvent, Subscription
from opsdesk.billing.proration import PricedQuantity, prorate
from opsdesk.billing.providers import configure
from opsdesk.billing.providers.stripe_api import StripeProvider
from opsdesk.billing.service import disputes, invoicing, plan_changes, reconciliation, refunds
from opsdesk.config import Settings
from opsdesk.tickets.models import Message, Ticket
from tests.billing.builders import make_billed, make_paid_charge
from tests.billing.stripe_server import StripeServer, stripe_server
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_user, staff_actor
from tests.support.web import app_client, bearer_headers

SECRET = "whsec_test_secret"
API_KEY = "sk_test_opsdesk"


@pytest.fixture
def stripe() -> Iterator[StripeServer]:
    with stripe_server() as server:
        configure(Settings(environment="test", stripe_api_key=API_KEY, stripe_api_base=server.base_url))
        yield server
    configure(Settings(environment="test"))


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path, stripe: StripeServer) -> TestClient:
    return app_client(
        database,
        tmp_path,
        stripe_webhook_secret=SECRET,
        stripe_api_key=API_KEY,
        stripe_api_base=stripe.base_url,
    )


def _signed(client: TestClient, event: dict[str, Any], *, secret: str = SECRET, at: int | None = None) -> Any:
    payload = json.dumps(event).encode()
    header = webhook_signature.sign(payload, secret, at if at is not None else int(time.time()))
    return client.post(
        "/api/v1/billing/stripe/webhook",
        content=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def _dispute_event(
    event_id: str,
    charge: str,
    *,
    status: str = "needs_response",
    kind: str = "created",
    due_by: int = 1_900_000_000,
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": int(time.time()),
        "type": f"charge.dispute.{kind}",
        "livemode": False,
        "pending_webhooks": 1,
        "data": {
            "object": {
                "id": "dp_1QxYz",
                "object": "dispute",
                "amount": 4_000,
                "currency": "usd",
                "charge": charge,
                "reason": "product_not_received",
                "status": status,
                "is_charge_refundable": False,
                "evidence_details": {
                    "due_by": due_by,
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "balance_transactions": [
                    {"id": "txn_1", "object": "balance_transaction", "amount": -4_000, "fee": 1_500}
                ],
                "created": int(time.time()),
                "livemode": False,
                "metadata": {},
            }
        },
    }


def test_refund_goes_to_stripe_with_an_idempotency_key(db: Session, stripe: StripeServer) -> None:
    billed = make_billed(db, provider="stripe")
    payment = make_paid_charge(db, billed.customer, 9_000, charge_id="ch_3Pabc")
    lead = staff_actor(make_user(db, role="lead"))
    refund = refunds.issue_refund(db, lead, payment, amount_minor=2_500, reason="duplicate")
    [request] = stripe.posts("/v1/refunds")
    assert request.form["charge"] == "ch_3Pabc"
    assert request.form["amount"] == "2500"
    assert request.form["reason"] == "duplicate"
    assert request.headers["Idempotency-Key"] == f"opsdesk-refund-{refund.id}"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert refund.stripe_refund_id is not None
    assert refund.stripe_refund_id.startswith("re_")


def test_a_stripe_refusal_is_a_provider_error(db: Session, stripe: StripeServer) -> None:
    billed = make_billed(db, provider="stripe")
    payment = make_paid_charge(db, billed.customer, 9_000, charge_id="ch_refused")
    stripe.fail_next = {
        "type": "invalid_request_error",
        "message": "Charge ch_refused has already been refunded.",
    }
    with pytest.raises(ProviderError, match="already been refunded"):
        refunds.issue_refund(
            db, staff_actor(make_user(db, role="lead")), payment, amount_minor=100, reason="duplicate"
        )


def test_seat_change_updates_the_stripe_subscription_item(db: Session, stripe: StripeServer) -> None:
    billed = make_billed(db, provider="stripe", seats=10)
    with clock.frozen(datetime(2026, 3, 16, 12, tzinfo=UTC)):
        plan_changes.change_subscription(
            db, SYSTEM, billed.subscription, price_id=billed.premium.id, seats=12
        )
    [update] = stripe.posts(f"/v1/subscriptions/{billed.subscription.stripe_subscription_id}")
    assert update.form["items[0][id]"] == "si_123"
    assert update.form["items[0][price]"] == billed.premium.stripe_price_id
    assert update.form["items[0][quantity]"] == "12"
    assert update.form["proration_behavior"] == "create_prorations"


def test_dispute_created_webhook_opens_the_dispute_and_its_ticket(
    db: Session, client: TestClient, stripe: StripeServer
) -> None:
    billed = make_billed(db, provider="stripe")
    make_paid_charge(db, billed.customer, 4_000, charge_id="ch_disputed")
    answer = _signed(client, _dispute_event("evt_1", "ch_disputed"))
    assert answer.status_code == 200, answer.text
    dispute = db.scalars(select(Dispute).where(Dispute.stripe_dispute_id == "dp_1QxYz")).one()
    assert (dispute.status, dispute.amount_minor, dispute.currency, dispute.fee_amount_minor) == (
        "needs_response",
        4_000,
        "USD",
        1_500,
    )
    assert dispute.evidence_due_at == datetime.fromtimestamp(1_900_000_000, tz=UTC)
    ticket = db.get_one(Ticket, dispute.ticket_id)
    assert ticket.account_id == billed.account.id
    assert "dispute" in ticket.tags
    assert ticket.priority == "urgent"
    stored = db.scalars(select(StripeEvent).where(StripeEvent.event_id == "evt_1")).one()
    assert stored.status == "processed"
    assert stored.payload["data"]["object"]["id"] == "dp_1QxYz"

    user = make_user(db, role="billing")
    listed = client.get("/api/v1/billing/disputes", headers=bearer_headers(db, user))
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["ticket_id"] == ticket.id
    assert item["stripe_dispute_id"] == "dp_1QxYz"

    # The same event again: 200 and nothing new.
    tickets_before = db.scalar(select(func.count()).select_from(Ticket))
    again = _signed(client, _dispute_event("evt_1", "ch_disputed"))
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert db.scalar(select(func.count()).select_from(Ticket)) == tickets_before
    assert db.scalar(select(func.count()).select_from(Dispute)) == 1

    # Closing: outcome and fee recorded, and a note on the ticket.
    closed = _signed(client, _dispute_event("evt_2", "ch_disputed", status="lost", kind="closed"))
    assert closed.status_code == 200
    db.refresh(dispute)
    assert dispute.status == "lost"
    assert dispute.closed_at is not None
    notes = db.scalars(
        select(Message.body_text).where(Message.ticket_id == ticket.id, Message.is_public.is_(False))
    ).all()
    assert any("lost" in note for note in notes)


@pytest.mark.parametrize("problem", ["stale", "wrong_secret", "missing", "tampered"])
def test_bad_signatures_get_400_and_change_nothing(
    db: Session, client: TestClient, stripe: StripeServer, problem: str
) -> None:
    billed = make_billed(db, provider="stripe")
    make_paid_charge(db, billed.customer, 4_000, charge_id="ch_bad")
    event = _dispute_event("evt_bad", "ch_bad")
    payload = json.dumps(event).encode()
    now = int(time.time())
    header = {
        "stale": webhook_signature.sign(payload, SECRET, now - 301),
        "wrong_secret": webhook_signature.sign(payload, "whsec_other", now),
        "missing": "",
        "tampered": webhook_signature.sign(payload, SECRET, now),
    }[problem]
    body = payload.replace(b"4000", b"9000") if problem == "tampered" else payload
    answer = client.post("/api/v1/billing/stripe/webhook", content=body, headers={"Stripe-Signature": header})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert db.scalar(select(func.count()).select_from(StripeEvent)) == 0
    assert db.scalar(select(func.count()).select_from(Dispute)) == 0


def test_evidence_packet_is_a_pdf_submitted_through_stripe(
    db: Session, client: TestClient, stripe: StripeServer
) -> None:
    billed = make_billed(db, provider="stripe")
    make_paid_charge(db, billed.customer, 4_000, charge_id="ch_evidence")
    assert _signed(client, _dispute_event("evt_e1", "ch_evidence")).status_code == 200
    dispute = db.scalars(select(Dispute)).one()
    headers = bearer_headers(db, make_user(db, role="billing"))
    pdf = client.get(f"/api/v1/billing/disputes/{dispute.id}/evidence.pdf", headers=headers)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
    submitted = client.post(
        f"/api/v1/billing/disputes/{dispute.id}/evidence",
        headers=headers,
        json={"fields": {"cancellation_rebuttal": "The customer used the service daily."}},
    )
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "under_review"
    [upload] = stripe.posts("/v1/files")
    assert b"dispute_evidence" in upload.body
    assert b"%PDF-" in upload.body
    [update] = stripe.posts("/v1/disputes/dp_1QxYz")
    assert update.form["evidence[uncategorized_file]"] == "file_evidence_1"
    assert update.form["evidence[cancellation_rebuttal]"] == "The customer used the service daily."
    assert update.form["evidence[customer_email_address]"] == billed.customer.email
    assert update.form["submit"] == "true"
    # A contractor never sees the packet.
    contractor = bearer_headers(db, make_user(db, role="contractor"))
    assert (
        client.get(f"/api/v1/billing/disputes/{dispute.id}/evidence.pdf", headers=contractor).status_code
        == 403
    )
    assert client.get("/api/v1/billing/disputes", headers=contractor).status_code == 403


def test_charge_refunded_at_stripe_updates_the_mirror(
    db: Session, client: TestClient, stripe: StripeServer
) -> None:
    billed = make_billed(db, provider="stripe")
    payment = make_paid_charge(db, billed.customer, 6_000, charge_id="ch_mirror")
    event = {
        "id": "evt_r1",
        "object": "event",
        "type": "charge.refunded",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": "ch_mirror",
                "object": "charge",
                "amount": 6_000,
                "amount_refunded": 1_000,
                "currency": "usd",
                "customer": billed.customer.stripe_customer_id,
                "status": "succeeded",
                "captured": True,
                "refunds": {
                    "object": "list",
                    "data": [{"id": "re_dash", "object": "refund", "amount": 1_000, "status": "succeeded"}],
                },
            }
        },
    }
    assert _signed(client, event).status_code == 200
    db.refresh(payment)
    assert payment.refunded_amount_minor == 1_000
    sub_event = {
        "id": "evt_s1",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": billed.subscription.stripe_subscription_id,
                "object": "subscription",
                "status": "past_due",
                "cancel_at_period_end": False,
                "items": {"object": "list", "data": [{"id": "si_1", "quantity": 7}]},
            }
        },
    }
    assert _signed(client, sub_event).status_code == 200
    subscription = db.get_one(Subscription, billed.subscription.id)
    db.refresh(subscription)
    assert (subscription.status, subscription.seats) == ("past_due", 7)


def test_preview_endpoint_shape_and_nothing_changes(
    db: Session, client: TestClient, stripe: StripeServer
) -> None:
    # The app runs in the client's thread with the real clock, so the period is around now.
    billed = make_billed(db, seats=10, start=clock.now() - timedelta(days=3))
    headers = bearer_headers(db, make_user(db, role="billing"))
    answer = client.post(
        f"/api/v1/billing/subscriptions/{billed.subscription.id}/change/preview",
        headers=headers,
        json={"price_id": billed.premium.id, "seats": 12},
    )
    bad = client.post(
        f"/api/v1/billing/subscriptions/{billed.subscription.id}/change/preview",
        headers=headers,
        json={"seats": 0},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    at = datetime.fromisoformat(body["lines"][0]["period_start"])
    expected = prorate(
        PricedQuantity(2_000, 10),
        PricedQuantity(5_000, 12),
        billed.subscription.current_period_start,
        billed.subscription.current_period_end,
        at,
    )
    assert [line["amount_minor"] for line in body["lines"]] == [
        expected.credit.amount_minor,
        expected.charge.amount_minor,
    ]
    assert [line["quantity"] for line in body["lines"]] == [10, 12]
    assert body["net_amount_minor"] == expected.net_amount_minor > 0
    assert body["amount_due_now_minor"] == 0
    assert body["currency"] == "USD"
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    subscription = db.get_one(Subscription, billed.subscription.id)
    db.refresh(subscription)
    assert (subscription.price_id, subscription.seats) == (billed.monthly.id, 10)
    assert stripe.requests == []


def test_reconcile_against_the_stripe_api(db: Session, stripe: StripeServer) -> None:
    billed = make_billed(db, provider="stripe")
    make_paid_charge(db, billed.customer, 5_000, charge_id="ch_same")
    make_paid_charge(db, billed.customer, 5_000, charge_id="ch_amount")
    stripe.charges = [
        {
            "id": "ch_same",
            "object": "charge",
            "amount": 5_000,
            "amount_refunded": 0,
            "currency": "usd",
            "status": "succeeded",
            "captured": True,
            "customer": billed.customer.stripe_customer_id,
        },
        {
            "id": "ch_amount",
            "object": "charge",
            "amount": 5_500,
            "amount_refunded": 0,
            "currency": "usd",
            "status": "succeeded",
            "captured": True,
            "customer": billed.customer.stripe_customer_id,
        },
        {
            "id": "ch_unknown",
            "object": "charge",
            "amount": 700,
            "amount_refunded": 0,
            "currency": "usd",
            "status": "succeeded",
            "captured": True,
            "customer": "cus_other",
        },
    ]
    stripe.subscriptions = [
        {"id": billed.subscription.stripe_subscription_id, "object": "subscription", "status": "canceled"}
    ]
    run = reconciliation.reconcile(db, SYSTEM, source="api")
    assert (run.ledger_charges, run.provider_charges, run.discrepancy_count) == (2, 3, 3)
    assert reconciliation.counts_by_kind(db, run.id) == {
        "amount_mismatch": 1,
        "missing_in_ledger": 1,
        "subscription_status_mismatch": 1,
    }
    [mismatch] = [
        item for item in reconciliation.discrepancies_of(db, SYSTEM, run.id) if item.kind == "amount_mismatch"
    ]
    assert mismatch.account_id == billed.account.id
    ticket = reconciliation.open_ticket(db, SYSTEM, mismatch)
    assert ticket.account_id == billed.account.id
    assert "reconciliation" in ticket.tags
    assert reconciliation.open_ticket(db, SYSTEM, mismatch).id == ticket.id


def test_stripe_provider_needs_stripe_ids(stripe: StripeServer) -> None:
    provider = StripeProvider(API_KEY, stripe.base_url)
    with pytest.raises(ProviderError, match="no Stripe id"):
        provider.create_refund(
            charge_ref=None, amount_minor=1, currency="USD", reason="duplicate", idempotency_key="k"
        )
    assert disputes.STRIPE_ACTOR.via == "stripe"
    assert Payment.__tablename__ == "billing_payments"


def test_stripe_invoices_are_mirrored_and_balance(
    db: Session, client: TestClient, stripe: StripeServer
) -> None:
    billed = make_billed(db, provider="stripe")
    invoice_object = {
        "id": "in_1Mirror",
        "object": "invoice",
        "number": "ACME-0042",
        "customer": billed.customer.stripe_customer_id,
        "subscription": billed.subscription.stripe_subscription_id,
        "status": "open",
        "currency": "usd",
        "collection_method": "send_invoice",
        "subtotal": 20_000,
        "tax": 1_600,
        "total": 21_600,
        "amount_due": 21_600,
        "amount_paid": 0,
        "due_date": 1_900_000_000,
        "created": 1_890_000_000,
        "period_start": 1_887_000_000,
        "period_end": 1_889_592_000,
        "attempt_count": 0,
        "custom_fields": [{"name": "PO", "value": "PO-9"}],
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": "il_1",
                    "object": "line_item",
                    "amount": 20_000,
                    "description": "10 x Team",
                    "quantity": 10,
                    "proration": False,
                    "period": {"start": 1_887_000_000, "end": 1_889_592_000},
                }
            ],
        },
    }
    event = {
        "id": "evt_inv1",
        "object": "event",
        "type": "invoice.finalized",
        "created": int(time.time()),
        "data": {"object": invoice_object},
    }
    assert _signed(client, event).status_code == 200
    invoice = db.scalars(select(Invoice).where(Invoice.stripe_invoice_id == "in_1Mirror")).one()
    assert (invoice.number, invoice.status, invoice.total_amount_minor, invoice.po_number) == (
        "ACME-0042",
        "open",
        21_600,
        "PO-9",
    )
    assert invoice.subscription_id == billed.subscription.id
    assert invoicing.invoice_balances(invoice)
    paid = {**invoice_object, "status": "paid", "amount_paid": 21_600, "amount_due": 21_600}
    assert (
        _signed(
            client, {**event, "id": "evt_inv2", "type": "invoice.paid", "data": {"object": paid}}
        ).status_code
        == 200
    )
    db.refresh(invoice)
    assert (invoice.status, invoice.amount_due_minor, invoice.amount_paid_minor) == ("paid", 0, 21_600)
    assert invoicing.invoice_balances(invoice)
    headers = bearer_headers(db, make_user(db, role="billing"))
    pdf = client.get(f"/api/v1/billing/invoices/{invoice.id}.pdf", headers=headers)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
    shown = client.get(f"/api/v1/billing/invoices/{invoice.id}", headers=headers).json()
    assert (shown["number"], shown["po_number"], shown["amount_due_minor"]) == ("ACME-0042", "PO-9", 0)
    contractor = bearer_headers(db, make_user(db, role="contractor"))
    assert client.get(f"/api/v1/billing/invoices/{invoice.id}.pdf", headers=contractor).status_code == 403
