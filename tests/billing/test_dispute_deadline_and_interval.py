"""A dispute's evidence deadline as its ticket's SLA (less the admin's safety margin), and
monthly <-> annual switches done as Stripe does them (new period now, credit for the unused
time, the new price charged in full on a new invoice)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import AuditEvent
from opsdesk.billing.errors import SubscriptionChangeRefusedError
from opsdesk.billing.models import BillingPrice, BillingSetting, Invoice, InvoiceLine, Subscription
from opsdesk.billing.service import catalog, disputes, invoicing, plan_changes
from opsdesk.billing.service.disputes import DisputeFacts
from opsdesk.sla.clocks import sweep_breaches
from opsdesk.sla.models import SlaTarget
from opsdesk.tickets.models import Message
from tests.billing.builders import Billed, make_billed, make_paid_charge
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_user, staff_actor
from tests.support.web import app_client, bearer_headers

OPENED = datetime(2026, 3, 10, 9, tzinfo=UTC)
EVIDENCE_DUE = datetime(2026, 3, 20, 23, 59, 59, tzinfo=UTC)
HALFWAY = datetime(2026, 3, 16, 12, tzinfo=UTC)


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> TestClient:
    return app_client(database, tmp_path)


def test_dispute_ticket_is_due_before_the_evidence_deadline_and_breaches(
    db: Session, client: TestClient
) -> None:
    admin = make_user(db, role="admin")
    headers = bearer_headers(db, admin)
    refused = client.put(
        "/api/v1/billing/settings",
        json={"dispute_deadline_margin_hours": -5, "proration_behavior": "always_invoice"},
        headers=headers,
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert db.scalar(select(func.count()).select_from(BillingSetting)) == 0
    saved = client.put(
        "/api/v1/billing/settings", json={"dispute_deadline_margin_hours": 48}, headers=headers
    )
    assert saved.status_code == 200
    assert saved.json() == {
        "proration_behavior": "create_prorations",
        "dispute_deadline_margin_hours": 48,
        "seller_country": None,
    }

    billed = make_billed(db)
    payment = make_paid_charge(db, billed.customer, 4_000, charge_id="ch_deadline")
    with clock.frozen(OPENED):
        dispute = disputes.open_dispute(
            db,
            SYSTEM,
            DisputeFacts(
                "dp_deadline", "ch_deadline", 4_000, "USD", "fraudulent", "needs_response", EVIDENCE_DUE
            ),
            payment=payment,
        )
    assert dispute.ticket_id is not None
    listed = client.get(f"/api/v1/tickets/{dispute.ticket_id}/sla", headers=headers).json()["items"]
    deadlines = [item for item in listed if item["kind"] == "deadline"]
    assert len(deadlines) == 1
    assert deadlines[0]["metric"] == "resolution"
    assert datetime.fromisoformat(deadlines[0]["due_at"]) == EVIDENCE_DUE - timedelta(hours=48)
    assert "evidence due 2026-03-20 23:59 UTC" in deadlines[0]["reason"]
    # The customer is told on the dispute's ticket through the dispute macro.
    replies = db.scalars(
        select(Message.body_text).where(Message.ticket_id == dispute.ticket_id, Message.is_public)
    ).all()
    assert any("disputed a charge of USD 40.00" in body for body in replies)

    target = db.scalars(
        select(SlaTarget).where(SlaTarget.ticket_id == dispute.ticket_id, SlaTarget.kind == "deadline")
    ).one()
    with clock.frozen(EVIDENCE_DUE - timedelta(hours=48, seconds=1)):
        sweep_breaches(db)
    db.expire_all()
    assert db.get_one(SlaTarget, target.id).status == "active"
    with clock.frozen(EVIDENCE_DUE - timedelta(hours=48) + timedelta(seconds=1)):
        sweep_breaches(db)
    db.expire_all()
    assert db.get_one(SlaTarget, target.id).status == "breached"
    shown = client.get(f"/api/v1/tickets/{dispute.ticket_id}/sla", headers=headers).json()["items"]
    assert [item["status"] for item in shown if item["kind"] == "deadline"] == ["breached"]


def test_a_dispute_without_a_due_time_starts_no_deadline(db: Session) -> None:
    billed = make_billed(db)
    payment = make_paid_charge(db, billed.customer, 4_000, charge_id="ch_nodue")
    dispute = disputes.open_dispute(
        db,
        SYSTEM,
        DisputeFacts("dp_nodue", "ch_nodue", 4_000, "USD", "unrecognized", "warning_needs_response", None),
        payment=payment,
    )
    assert (
        db.scalar(
            select(func.count())
            .select_from(SlaTarget)
            .where(SlaTarget.ticket_id == dispute.ticket_id, SlaTarget.kind == "deadline")
        )
        == 0
    )


def _annual(db: Session, billed: Billed) -> BillingPrice:
    return catalog.create_price(
        db,
        SYSTEM,
        billed.monthly.product,
        nickname="Annual",
        interval="year",
        pricing_model="per_seat",
        unit_amount_minor=20_000,
        currency="USD",
    )


def test_monthly_to_annual_starts_a_new_period_and_charges_the_year_now(db: Session) -> None:
    billed = make_billed(db, seats=10)
    annual = _annual(db, billed)
    billing = staff_actor(make_user(db, role="billing"))
    with clock.frozen(HALFWAY):
        preview = plan_changes.preview_change(
            db, billing, billed.subscription, price_id=annual.id, seats=None
        )
    # Half of March unused on 10 x 20.00 = -100.00; a full year of 10 x 200.00 = 2,000.00.
    assert [line.amount_minor for line in preview.lines] == [-10_000, 200_000]
    assert preview.resets_period
    assert preview.new_period_end == datetime(2027, 3, 16, 12, tzinfo=UTC)
    assert preview.amount_due_now_minor == 190_000
    db.refresh(billed.subscription)
    assert billed.subscription.price_id == billed.monthly.id
    assert db.scalar(select(func.count()).select_from(InvoiceLine)) == 0

    with clock.frozen(HALFWAY):
        change = plan_changes.change_subscription(
            db, billing, billed.subscription, price_id=annual.id, seats=None
        )
    assert change.lines == preview.lines
    subscription = db.get_one(Subscription, billed.subscription.id)
    assert (subscription.price_id, subscription.current_period_start, subscription.current_period_end) == (
        annual.id,
        HALFWAY,
        datetime(2027, 3, 16, 12, tzinfo=UTC),
    )
    invoice = db.scalars(select(Invoice).where(Invoice.subscription_id == subscription.id)).one()
    assert (invoice.total_amount_minor, invoice.status, invoice.amount_paid_minor) == (
        190_000,
        "paid",
        190_000,
    )
    assert [line.amount_minor for line in invoice.lines] == [-10_000, 200_000]
    assert invoicing.invoice_balances(invoice)
    # Nothing is due again at the old monthly renewal.
    with clock.frozen(datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC)):
        assert invoicing.run_invoicing(db, SYSTEM).invoices == 0


def test_annual_to_monthly_credits_the_unused_year(db: Session) -> None:
    billed = make_billed(db, seats=2)
    annual = _annual(db, billed)
    billing = staff_actor(make_user(db, role="billing"))
    with clock.frozen(billed.subscription.current_period_start + timedelta(seconds=1)):
        plan_changes.change_subscription(db, billing, billed.subscription, price_id=annual.id, seats=None)
    start = billed.subscription.current_period_start
    quarter = start + (billed.subscription.current_period_end - start) / 4
    with clock.frozen(quarter):
        change = plan_changes.change_subscription(
            db, billing, billed.subscription, price_id=billed.monthly.id, seats=None
        )
    credit, charge = (line.amount_minor for line in change.lines)
    assert charge == 2 * 2_000
    assert credit == -30_000  # three quarters of 2 x 200.00
    assert change.amount_due_now_minor == 0
    customer = billed.customer
    db.refresh(customer)
    assert customer.credit_balance_minor == 26_000


def test_a_trial_cannot_switch_interval(db: Session) -> None:
    billed = make_billed(db)
    annual = _annual(db, billed)
    billed.subscription.status = "trialing"
    db.flush()
    billing = staff_actor(make_user(db, role="billing"))
    with clock.frozen(HALFWAY), pytest.raises(SubscriptionChangeRefusedError, match="trial"):
        plan_changes.change_subscription(db, billing, billed.subscription, price_id=annual.id, seats=None)
    db.refresh(billed.subscription)
    assert billed.subscription.price_id == billed.monthly.id


def test_the_deadline_is_met_when_the_dispute_closes_first(db: Session) -> None:
    billed = make_billed(db)
    payment = make_paid_charge(db, billed.customer, 2_500, charge_id="ch_decided")
    with clock.frozen(OPENED):
        dispute = disputes.open_dispute(
            db,
            SYSTEM,
            DisputeFacts(
                "dp_decided", "ch_decided", 2_500, "USD", "fraudulent", "needs_response", EVIDENCE_DUE
            ),
            payment=payment,
        )
    assert dispute.ticket_id is not None
    deadline = db.scalars(
        select(SlaTarget).where(SlaTarget.ticket_id == dispute.ticket_id, SlaTarget.kind == "deadline")
    ).one()
    assert deadline.status == "active"

    # The bank decides before any evidence went in: the deadline has nothing left to guard.
    with clock.frozen(HALFWAY):
        disputes.record_outcome(
            db, staff_actor(make_user(db, role="billing")), dispute, status="lost", fee_amount_minor=1_500
        )
    db.refresh(deadline)
    assert (deadline.status, deadline.achieved_at) == ("achieved", HALFWAY)
    with clock.frozen(EVIDENCE_DUE + timedelta(days=1)):
        sweep_breaches(db)
    db.refresh(deadline)
    assert deadline.status == "achieved"
    trail = db.scalars(
        select(AuditEvent.action).where(
            AuditEvent.ticket_id == dispute.ticket_id, AuditEvent.action.like("sla_deadline_%")
        )
    ).all()
    assert list(trail) == ["sla_deadline_started", "sla_deadline_met"]
