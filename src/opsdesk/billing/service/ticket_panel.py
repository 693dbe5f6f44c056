"""What an agent sees about billing beside a ticket: plan, seats, renewal, status, and for
those allowed to see payment details, invoices, payments, refunds, disputes and the last
payment failure in the customer's words. Contractors get the plan and status only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission, require
from opsdesk.billing.models import BillingCustomer, Dispute, Invoice, Payment, Subscription
from opsdesk.billing.service.dunning import failure_summary
from opsdesk.money import Money
from opsdesk.tickets.models import Ticket


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    id: int
    plan: str
    price: str
    seats: int
    status: str
    renews_at: datetime | None
    cancel_at_period_end: bool
    paused: bool


@dataclass(frozen=True, slots=True)
class PaymentView:
    id: int
    created_at: datetime
    amount: str
    refunded: str
    refundable_minor: int
    status: str
    card: str
    disputed: bool


@dataclass(frozen=True, slots=True)
class BillingPanel:
    customer_id: int | None
    customer_name: str | None
    credit_balance: str | None
    subscriptions: list[SubscriptionView] = field(default_factory=list)
    shows_payment_details: bool = False
    invoices: list[tuple[int, str, str, str, datetime | None]] = field(default_factory=list)
    payments: list[PaymentView] = field(default_factory=list)
    disputes: list[tuple[int, str, str, datetime | None]] = field(default_factory=list)
    failure_reason: str | None = None


def panel_for_ticket(session: Session, actor: Actor, ticket: Ticket) -> BillingPanel:
    require(actor, Permission.ACCOUNT_READ)
    customer = (
        session.scalars(
            select(BillingCustomer)
            .where(BillingCustomer.account_id == ticket.account_id)
            .order_by(BillingCustomer.id)
        ).first()
        if ticket.account_id is not None
        else None
    )
    if customer is None:
        return BillingPanel(None, None, None)
    return panel_for_customer(session, actor, customer)


def panel_for_customer(session: Session, actor: Actor, customer: BillingCustomer) -> BillingPanel:
    subscriptions = [
        SubscriptionView(
            item.id,
            item.price.product.name,
            f"{Money(item.price.unit_amount_minor, item.price.currency).format()}"
            f" / {item.price.interval}{' / seat' if item.price.pricing_model == 'per_seat' else ''}",
            item.seats,
            item.status,
            item.renews_at,
            item.cancel_at_period_end,
            item.paused_at is not None,
        )
        for item in session.scalars(
            select(Subscription)
            .where(Subscription.customer_id == customer.id)
            .order_by(Subscription.id.desc())
        )
    ]
    if not has_permission(actor, Permission.PAYMENT_READ):
        return BillingPanel(customer.id, customer.name, None, subscriptions)
    invoices = [
        (
            invoice.id,
            invoice.number,
            Money(invoice.total_amount_minor, invoice.currency).format(),
            invoice.status,
            invoice.due_at,
        )
        for invoice in session.scalars(
            select(Invoice).where(Invoice.customer_id == customer.id).order_by(Invoice.id.desc()).limit(10)
        )
    ]
    disputed_ids = set(session.scalars(select(Dispute.payment_id).where(Dispute.customer_id == customer.id)))
    payments = [
        PaymentView(
            payment.id,
            payment.created_at,
            Money(payment.amount_minor, payment.currency).format(),
            Money(payment.refunded_amount_minor, payment.currency).format(),
            payment.refundable_amount_minor,
            payment.status,
            f"{payment.card_brand or 'card'} •••• {payment.card_last4}" if payment.card_last4 else "-",
            payment.id in disputed_ids,
        )
        for payment in session.scalars(
            select(Payment).where(Payment.customer_id == customer.id).order_by(Payment.id.desc()).limit(10)
        )
    ]
    disputes = [
        (
            dispute.id,
            dispute.status,
            Money(dispute.amount_minor, dispute.currency).format(),
            dispute.evidence_due_at,
        )
        for dispute in session.scalars(
            select(Dispute).where(Dispute.customer_id == customer.id).order_by(Dispute.id.desc())
        )
    ]
    return BillingPanel(
        customer.id,
        customer.name,
        Money(customer.credit_balance_minor, customer.currency).format(),
        subscriptions,
        True,
        invoices,
        payments,
        disputes,
        failure_summary(session, customer.id),
    )
