"""Plan and seat changes with proration, cancellation, pause, the month-end run and dunning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.errors import PermissionDeniedError
from opsdesk.billing.errors import InvalidBillingRequestError, SubscriptionChangeRefusedError
from opsdesk.billing.models import BillingCustomer, Invoice, InvoiceLine, Payment, Subscription
from opsdesk.billing.service import cancellations, dunning, invoicing, plan_changes, policy, refunds
from opsdesk.outbox import OutboxJob
from opsdesk.tickets.models import Message
from tests.billing.builders import START, make_billed
from tests.support.factories import SYSTEM, make_ticket, make_user, staff_actor

HALFWAY = datetime(2026, 3, 16, 12, tzinfo=UTC)  # March has 31 days: exactly half remains


def _lines(db: Session, subscription: Subscription) -> list[InvoiceLine]:
    return list(
        db.scalars(
            select(InvoiceLine).where(InvoiceLine.subscription_id == subscription.id).order_by(InvoiceLine.id)
        )
    )


def test_preview_shows_stripe_proration_and_changes_nothing(db: Session) -> None:
    billed = make_billed(db, seats=10)
    billing = staff_actor(make_user(db, role="billing"))
    with clock.frozen(HALFWAY):
        preview = plan_changes.preview_change(
            db, billing, billed.subscription, price_id=billed.premium.id, seats=12
        )
    assert [line.amount_minor for line in preview.lines] == [-10_000, 30_000]
    assert preview.net_amount_minor == 20_000
    assert preview.amount_due_now_minor == 0  # default: the net waits for the next invoice
    db.refresh(billed.subscription)
    assert (billed.subscription.price_id, billed.subscription.seats) == (billed.monthly.id, 10)
    assert _lines(db, billed.subscription) == []


def test_change_records_pending_lines_that_the_next_invoice_collects(db: Session) -> None:
    billed = make_billed(db, seats=10)
    billing = staff_actor(make_user(db, role="billing"))
    with clock.frozen(HALFWAY):
        plan_changes.change_subscription(db, billing, billed.subscription, price_id=None, seats=14)
    assert billed.subscription.seats == 14
    pending = _lines(db, billed.subscription)
    assert [(line.amount_minor, line.invoice_id) for line in pending] == [(-10_000, None), (14_000, None)]
    with clock.frozen(datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC)):
        result = invoicing.run_invoicing(db, SYSTEM)
    assert (result.invoices, result.paid, result.failed) == (1, 1, 0)
    invoice = db.scalars(select(Invoice).where(Invoice.subscription_id == billed.subscription.id)).one()
    assert invoice.total_amount_minor == 14 * 2_000 + 4_000
    assert invoice.status == "paid"
    assert invoicing.invoice_balances(invoice)
    db.refresh(billed.subscription)
    assert billed.subscription.current_period_start == datetime(2026, 4, 1, tzinfo=UTC)
    assert billed.subscription.current_period_end == datetime(2026, 5, 1, tzinfo=UTC)
    # Running again at the same instant finds nothing due.
    with clock.frozen(datetime(2026, 4, 1, 0, 0, 2, tzinfo=UTC)):
        assert invoicing.run_invoicing(db, SYSTEM).invoices == 0


def test_invoice_now_policy_and_bad_changes_are_refused(db: Session) -> None:
    billed = make_billed(db, seats=10)
    admin = staff_actor(make_user(db, role="admin"))
    policy.set_proration_behavior(db, admin, "always_invoice")
    with clock.frozen(HALFWAY):
        change = plan_changes.change_subscription(
            db, admin, billed.subscription, price_id=billed.premium.id, seats=None
        )
        assert change.amount_due_now_minor == 15_000
        invoice = db.scalars(select(Invoice).where(Invoice.subscription_id == billed.subscription.id)).one()
        assert (invoice.total_amount_minor, invoice.status) == (15_000, "paid")
        for price_id, seats in ((None, None), (None, 0), (999_999, None), (billed.premium.id, 10)):
            with pytest.raises(InvalidBillingRequestError):
                plan_changes.preview_change(db, admin, billed.subscription, price_id=price_id, seats=seats)
    agent = staff_actor(make_user(db, role="agent"))
    with pytest.raises(PermissionDeniedError, match=r"billing\.write"), clock.frozen(HALFWAY):
        plan_changes.change_subscription(db, agent, billed.subscription, price_id=None, seats=3)
    assert billed.subscription.seats == 10


def test_cancel_now_with_credit_and_at_period_end(db: Session) -> None:
    billing = staff_actor(make_user(db, role="billing"))
    first = make_billed(db, seats=2)
    with clock.frozen(HALFWAY):
        result = cancellations.cancel_subscription(db, billing, first.subscription, mode="now_with_credit")
    assert result.unused_amount_minor == 2_000
    assert first.subscription.status == "canceled"
    assert db.get_one(BillingCustomer, first.customer.id).credit_balance_minor == 2_000
    with pytest.raises(SubscriptionChangeRefusedError):
        cancellations.cancel_subscription(db, billing, first.subscription, mode="now")

    second = make_billed(db, seats=1)
    with clock.frozen(HALFWAY):
        cancellations.cancel_subscription(db, billing, second.subscription, mode="at_period_end")
        assert second.subscription.renews_at is None
        cancellations.reactivate(db, billing, second.subscription)
        cancellations.cancel_subscription(db, billing, second.subscription, mode="at_period_end")
        cancellations.set_paused(db, billing, second.subscription, paused=True)
        cancellations.set_paused(db, billing, second.subscription, paused=False)
    with clock.frozen(datetime(2026, 4, 1, 1, tzinfo=UTC)):
        outcome = invoicing.run_invoicing(db, SYSTEM, subscription_ids=[second.subscription.id])
    assert (outcome.invoices, outcome.canceled) == (0, 1)
    db.refresh(second.subscription)
    assert second.subscription.status == "canceled"


def test_cancel_now_with_refund_refunds_the_unused_part(db: Session) -> None:
    billed = make_billed(db, seats=3, start=datetime(2026, 2, 1, tzinfo=UTC))
    with clock.frozen(datetime(2026, 3, 1, 0, 0, 1, tzinfo=UTC)):
        invoicing.run_invoicing(db, SYSTEM, subscription_ids=[billed.subscription.id])
    billing = staff_actor(make_user(db, role="billing"))
    with clock.frozen(HALFWAY):
        result = cancellations.cancel_subscription(db, billing, billed.subscription, mode="now_with_refund")
    # No limit is set for billing specialists, so the prorated refund waits for a lead.
    assert result.refund is not None
    assert result.refund.status == "pending_approval"
    lead = staff_actor(make_user(db, role="lead"))
    refunds.approve_refund(db, lead, result.refund)
    assert result.refund is not None
    assert result.refund.amount_minor == 3_000
    payment = db.scalars(select(Payment).where(Payment.customer_id == billed.customer.id)).one()
    assert payment.refunded_amount_minor == 3_000


def test_dunning_past_due_then_unpaid_then_canceled_with_plain_reasons(db: Session) -> None:
    billed = make_billed(db, seats=1)
    billed.customer.card_state = "insufficient_funds"
    ticket = make_ticket(db, subject="Card trouble", requester_email=billed.customer.email)
    ticket.account_id = billed.account.id
    db.flush()
    renewal = datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC)
    with clock.frozen(renewal):
        result = invoicing.run_invoicing(db, SYSTEM)
    assert (result.invoices, result.failed) == (1, 1)
    db.refresh(billed.subscription)
    assert billed.subscription.status == "past_due"
    invoice = db.scalars(select(Invoice).where(Invoice.subscription_id == billed.subscription.id)).one()
    assert invoice.next_payment_attempt_at == renewal + timedelta(days=3)
    emails = db.scalars(select(OutboxJob).where(OutboxJob.kind == "billing.customer_email")).all()
    assert len(emails) == 1
    assert "not enough money" in emails[0].payload["body_text"]
    note = db.scalars(
        select(Message).where(Message.ticket_id == ticket.id, Message.is_public.is_(False))
    ).one()
    assert "not enough money" in note.body_text
    assert dunning.failure_summary(db, billed.customer.id) is not None

    for days in (3, 8, 15):
        with clock.frozen(renewal + timedelta(days=days, seconds=1)):
            assert dunning.run_dunning(db, SYSTEM)["retried"] == 1
    db.refresh(billed.subscription)
    assert billed.subscription.status == "unpaid"
    assert invoice.payment_attempts == 4
    # Unpaid after the last retry (day 15), canceled 14 days later.
    with clock.frozen(renewal + timedelta(days=28)):
        assert dunning.run_dunning(db, SYSTEM) == {"retried": 0, "paid": 0, "canceled": 0}
    with clock.frozen(renewal + timedelta(days=29)):
        assert dunning.run_dunning(db, SYSTEM)["canceled"] == 1
    db.refresh(billed.subscription)
    db.refresh(invoice)
    assert (billed.subscription.status, invoice.status) == ("canceled", "uncollectible")


def test_a_retry_that_succeeds_makes_the_subscription_active(db: Session) -> None:
    billed = make_billed(db, seats=1)
    billed.customer.card_state = "expired_card"
    renewal = datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC)
    with clock.frozen(renewal):
        invoicing.run_invoicing(db, SYSTEM)
    billed.customer.card_state = "valid"
    db.flush()
    with clock.frozen(renewal + timedelta(days=3, seconds=1)):
        assert dunning.run_dunning(db, SYSTEM) == {"retried": 1, "paid": 1, "canceled": 0}
    db.refresh(billed.subscription)
    assert (billed.subscription.status, billed.subscription.past_due_since) == ("active", None)


def test_enterprise_invoice_on_net_terms_with_po_and_reminders(db: Session) -> None:
    billed = make_billed(db, seats=50)
    billing = staff_actor(make_user(db, role="billing"))
    with pytest.raises(InvalidBillingRequestError):
        invoicing.create_invoice(
            db,
            billing,
            billed.customer,
            payment_terms="net_30",
            lines=[invoicing.ManualLine("Seats", 50, 4_000)],
        )
    with clock.frozen(START):
        invoice = invoicing.create_invoice(
            db,
            billing,
            billed.customer,
            payment_terms="net_30",
            po_number="PO-7731",
            tax_amount_minor=16_000,
            lines=[invoicing.ManualLine("Enterprise seats", 50, 4_000)],
        )
    assert (invoice.status, invoice.total_amount_minor, invoice.amount_due_minor) == (
        "open",
        216_000,
        216_000,
    )
    assert invoice.due_at == START + timedelta(days=30)
    assert invoice.po_number == "PO-7731"
    assert invoicing.invoice_balances(invoice)
    assert db.scalar(select(func.count()).select_from(Payment).where(Payment.invoice_id == invoice.id)) == 0
    with clock.frozen(START + timedelta(days=23)):
        assert invoicing.send_invoice_reminders(db, billing) == 1
        assert invoicing.send_invoice_reminders(db, billing) == 0
    with clock.frozen(START + timedelta(days=38)):
        assert invoicing.send_invoice_reminders(db, billing) == 1
    assert invoice.reminders_sent == ["due-7d", "due+7d"]
    invoicing.record_bank_payment(db, billing, invoice, amount_minor=216_000, reference="wire 55")
    assert (invoice.status, invoice.amount_due_minor) == ("paid", 0)


def test_stripe_customers_are_invoiced_in_stripe_not_here(db: Session) -> None:
    billed = make_billed(db, provider="stripe")
    with pytest.raises(InvalidBillingRequestError) as refused:
        invoicing.create_invoice(db, SYSTEM, billed.customer, lines=[invoicing.ManualLine("Seats", 1, 100)])
    assert refused.value.fields[0].location == ("customer_id",)
    assert db.scalar(select(func.count()).select_from(Invoice)) == 0


def test_renewals_keep_the_anchor_day_after_a_short_month(db: Session) -> None:
    anchor = datetime(2027, 1, 31, 10, tzinfo=UTC)
    billed = make_billed(db, start=anchor)
    subscription = billed.subscription
    assert subscription.billing_cycle_anchor == anchor
    ends = []
    for renewal_day in (datetime(2027, 2, 28, 11, tzinfo=UTC), datetime(2027, 3, 31, 11, tzinfo=UTC)):
        with clock.frozen(renewal_day):
            assert invoicing.run_invoicing(db, SYSTEM, subscription_ids=[subscription.id]).invoices == 1
        db.refresh(subscription)
        ends.append(subscription.current_period_end)
    # Jan 31 -> Feb 28 -> Mar 31 -> Apr 30, as Stripe counts from the anchor (not Mar 28, Apr 28).
    assert ends == [datetime(2027, 3, 31, 10, tzinfo=UTC), datetime(2027, 4, 30, 10, tzinfo=UTC)]
