"""The demo's billing seed (bulk inserts) writes data the services would have written: one
customer and subscription per paying account, every period invoiced and balanced, card
invoices paid by a captured charge, declining cards in dunning, the notice macros installed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import AuditEvent
from opsdesk.billing import invoice_math
from opsdesk.billing.bulk import insert_rows, table_of
from opsdesk.billing.models import (
    BillingCustomer,
    Dispute,
    Invoice,
    InvoiceLine,
    NoticeMacroLink,
    Payment,
    Subscription,
)
from opsdesk.billing.notice_macros import NOTICE_MACROS
from opsdesk.billing.service import ticket_panel
from opsdesk.demo import seeder
from opsdesk.demo.context import SeedOptions
from opsdesk.tickets.models import Account, Ticket
from tests.support.factories import make_user, staff_actor

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def test_seeded_billing_is_consistent(db: Session) -> None:
    with clock.frozen(NOW):
        seeder.seed_company(db, SeedOptions(tickets=150, days=30, seed=11))
    paying = set(db.scalars(select(Account.id).where(Account.mrr_amount_minor > 0)))
    customers = db.scalars(select(BillingCustomer)).all()
    assert {customer.account_id for customer in customers} == paying
    subscriptions = db.scalars(select(Subscription)).all()
    assert Counter(item.customer_id for item in subscriptions) == Counter({c.id: 1 for c in customers})
    for subscription in subscriptions:
        assert subscription.current_period_start <= NOW < subscription.current_period_end
    lines: dict[int | None, list[int]] = {}
    for invoice_id, amount in db.execute(select(InvoiceLine.invoice_id, InvoiceLine.amount_minor)):
        lines.setdefault(invoice_id, []).append(amount)
    invoices = db.scalars(select(Invoice)).all()
    assert len(invoices) >= len(subscriptions)
    for invoice in invoices:
        assert invoice_math.balances(
            lines[invoice.id],
            subtotal=invoice.subtotal_amount_minor,
            tax=invoice.tax_amount_minor,
            total=invoice.total_amount_minor,
            credit_applied=invoice.credit_applied_amount_minor,
            amount_paid=invoice.amount_paid_minor,
            amount_due=invoice.amount_due_minor,
        ), invoice.number
    captured: dict[int | None, int] = {}
    for invoice_id, amount in db.execute(
        select(Payment.invoice_id, Payment.amount_minor).where(Payment.status == "succeeded")
    ):
        captured[invoice_id] = amount
    for invoice in invoices:
        if (
            invoice.payment_terms == "card"
            and invoice.status == "paid"
            and invoice.subscription_id is not None
        ):
            assert captured[invoice.id] == invoice.total_amount_minor
    declining = [customer for customer in customers if customer.card_state != "valid"]
    for customer in declining:
        subscription = next(item for item in subscriptions if item.customer_id == customer.id)
        if subscription.status == "past_due":
            open_invoice = db.scalars(
                select(Invoice).where(Invoice.subscription_id == subscription.id, Invoice.status == "open")
            ).one()
            assert open_invoice.last_failure_code == customer.card_state
            assert open_invoice.next_payment_attempt_at is not None
    assert db.scalar(select(func.count()).select_from(NoticeMacroLink)) == len(NOTICE_MACROS)
    assert db.scalar(select(func.count()).select_from(Dispute)) == 2
    # A seeded ticket of a paying account shows its billing panel.
    ticket = db.scalars(select(Ticket).where(Ticket.account_id.in_(paying)).order_by(Ticket.id)).first()
    assert ticket is not None
    panel = ticket_panel.panel_for_ticket(db, staff_actor(make_user(db, role="billing")), ticket)
    assert panel.customer_id is not None
    assert panel.subscriptions
    assert panel.invoices


def test_bulk_insert_rows_writes_what_a_core_insert_writes(db: Session) -> None:
    at = datetime(2026, 5, 1, 8, 30, 15, 123456, tzinfo=UTC)
    rows = [
        {
            "entity_type": "invoice",
            "entity_id": number,
            "action": "issued",
            "new_value": {"amount_minor": number * 100, "lines": [1, 2]},
            "actor_kind": "system",
            "actor_id": None,
            "actor_name": "bench",
            "via": "cli",
            "created_at": at,
        }
        for number in (1, 2)
    ]
    insert_rows(db.connection(), AuditEvent, rows)
    db.execute(
        table_of(AuditEvent).insert(), [{**rows[0], "entity_id": 3, "new_value": {"amount_minor": 300}}]
    )
    stored = db.scalars(
        select(AuditEvent).where(AuditEvent.entity_type == "invoice").order_by(AuditEvent.entity_id)
    ).all()
    assert [(row.entity_id, row.new_value, row.created_at, row.reason, row.field) for row in stored] == [
        (1, {"amount_minor": 100, "lines": [1, 2]}, at, None, None),
        (2, {"amount_minor": 200, "lines": [1, 2]}, at, None, None),
        (3, {"amount_minor": 300}, at, None, None),
    ]
