"""What an agent sees about billing beside a ticket, and what they may do from there.

The panel is built for the ticket's account (or, when the ticket has none, the requester's
account): the billing customer, each subscription (plan, seats, status, period, renewal), the
dunning state with the last failure in the customer's words, and for those allowed to see payment
details the recent invoices and charges and the open disputes with their evidence due time.
Contractors get the plan and status only. Which actions the actor may take (refund, change,
cancel) is decided here, so the template only shows what the services would accept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, has_permission, require
from opsdesk.billing.enums import PricingModel, SubscriptionStatus
from opsdesk.billing.failure_reasons import explain_failure
from opsdesk.billing.models import (
    BillingCustomer,
    BillingPrice,
    Dispute,
    Invoice,
    Payment,
    Subscription,
)
from opsdesk.billing.service.dunning import failure_summary
from opsdesk.billing.service.policy import REFUND_ROLES
from opsdesk.money import Money
from opsdesk.tickets.models import Person, Ticket

RECENT = 5
CHANGEABLE = frozenset(
    {SubscriptionStatus.ACTIVE.value, SubscriptionStatus.TRIALING.value, SubscriptionStatus.PAST_DUE.value}
)


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    id: int
    plan: str
    price: str
    price_id: int
    interval: str
    seats: int
    status: str
    period_start: datetime
    period_end: datetime
    renews_at: datetime | None
    cancel_at_period_end: bool
    paused: bool
    past_due_since: datetime | None = None
    changeable: bool = False
    cancelable: bool = False


@dataclass(frozen=True, slots=True)
class PaymentView:
    id: int
    created_at: datetime
    amount: str
    refunded: str
    refundable_minor: int
    refundable: str
    status: str
    card: str
    disputed: bool
    failure: str | None = None


@dataclass(frozen=True, slots=True)
class InvoiceView:
    id: int
    number: str
    total: str
    tax: str
    status: str
    due_at: datetime | None
    amount_due: str


@dataclass(frozen=True, slots=True)
class DisputeView:
    id: int
    status: str
    reason: str
    amount: str
    evidence_due_at: datetime | None
    inquiry: bool


@dataclass(frozen=True, slots=True)
class DunningView:
    """A subscription in dunning: since when, the reason in customer words, the next retry."""

    subscription_id: int
    status: str
    since: datetime | None
    reason: str | None
    next_retry_at: datetime | None
    attempts: int
    invoice_number: str | None


@dataclass(frozen=True, slots=True)
class PriceOption:
    id: int
    label: str


@dataclass(frozen=True, slots=True)
class BillingPanel:
    customer_id: int | None
    customer_name: str | None
    credit_balance: str | None
    subscriptions: list[SubscriptionView] = field(default_factory=list)
    shows_payment_details: bool = False
    invoices: list[InvoiceView] = field(default_factory=list)
    payments: list[PaymentView] = field(default_factory=list)
    disputes: list[DisputeView] = field(default_factory=list)
    failure_reason: str | None = None
    dunning: list[DunningView] = field(default_factory=list)
    payment_terms: str | None = None
    may_refund: bool = False
    may_change: bool = False
    prices: list[PriceOption] = field(default_factory=list)
    tax: str | None = None


def customer_for_ticket(session: Session, ticket: Ticket) -> BillingCustomer | None:
    """The billing customer of the ticket's account, or of the requester's account."""
    account_id = ticket.account_id
    if account_id is None and ticket.requester_id is not None:
        account_id = session.scalar(select(Person.primary_account_id).where(Person.id == ticket.requester_id))
    if account_id is None:
        return None
    return session.scalars(
        select(BillingCustomer).where(BillingCustomer.account_id == account_id).order_by(BillingCustomer.id)
    ).first()


def panel_for_ticket(session: Session, actor: Actor, ticket: Ticket) -> BillingPanel:
    require(actor, Permission.ACCOUNT_READ)
    customer = customer_for_ticket(session, ticket)
    if customer is None:
        return BillingPanel(None, None, None)
    return panel_for_customer(session, actor, customer)


def _price_label(price: BillingPrice) -> str:
    per_seat = " / seat" if price.pricing_model == PricingModel.PER_SEAT else ""
    return f"{Money(price.unit_amount_minor, price.currency).format()} / {price.interval}{per_seat}"


def _may_refund(actor: Actor) -> bool:
    return actor.user is not None and actor.user.is_active and actor.user.role in REFUND_ROLES


def panel_for_customer(session: Session, actor: Actor, customer: BillingCustomer) -> BillingPanel:
    may_change = has_permission(actor, Permission.BILLING_WRITE)
    subscriptions = [
        SubscriptionView(
            item.id,
            item.price.product.name,
            _price_label(item.price),
            item.price_id,
            item.price.interval,
            item.seats,
            item.status,
            item.current_period_start,
            item.current_period_end,
            item.renews_at,
            item.cancel_at_period_end,
            item.paused_at is not None,
            item.past_due_since,
            changeable=may_change and item.status in CHANGEABLE,
            cancelable=may_change and item.status != SubscriptionStatus.CANCELED,
        )
        for item in session.scalars(
            select(Subscription)
            .where(Subscription.customer_id == customer.id)
            .order_by(Subscription.id.desc())
        )
    ]
    may_refund = _may_refund(actor)
    prices: list[PriceOption] = []
    if may_change:
        prices = [
            PriceOption(price.id, f"{price.product.name} {price.nickname} - {_price_label(price)}")
            for price in session.scalars(
                select(BillingPrice)
                .where(BillingPrice.currency == customer.currency, BillingPrice.is_active.is_(True))
                .order_by(BillingPrice.interval, BillingPrice.unit_amount_minor, BillingPrice.id)
            )
        ]
    if not has_permission(actor, Permission.PAYMENT_READ):
        return BillingPanel(
            customer.id,
            customer.name,
            None,
            subscriptions,
            may_refund=may_refund,
            may_change=may_change,
            prices=prices,
        )
    invoices = [
        InvoiceView(
            invoice.id,
            invoice.number,
            Money(invoice.total_amount_minor, invoice.currency).format(),
            Money(invoice.tax_amount_minor, invoice.currency).format() if invoice.tax_amount_minor else "",
            invoice.status,
            invoice.due_at,
            Money(invoice.amount_due_minor, invoice.currency).format(),
        )
        for invoice in session.scalars(
            select(Invoice)
            .where(Invoice.customer_id == customer.id)
            .order_by(Invoice.id.desc())
            .limit(RECENT)
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
            Money(payment.refundable_amount_minor, payment.currency).format(),
            payment.status,
            f"{payment.card_brand or 'card'} •••• {payment.card_last4}" if payment.card_last4 else "-",
            payment.id in disputed_ids,
            explain_failure(payment.failure_code) if payment.status == "failed" else None,
        )
        for payment in session.scalars(
            select(Payment)
            .where(Payment.customer_id == customer.id)
            .order_by(Payment.id.desc())
            .limit(RECENT)
        )
    ]
    disputes = [
        DisputeView(
            dispute.id,
            dispute.status.replace("_", " "),
            dispute.reason.replace("_", " "),
            Money(dispute.amount_minor, dispute.currency).format(),
            dispute.evidence_due_at,
            dispute.is_inquiry,
        )
        for dispute in session.scalars(
            select(Dispute)
            .where(Dispute.customer_id == customer.id, Dispute.closed_at.is_(None))
            .order_by(Dispute.evidence_due_at, Dispute.id)
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
        _dunning(session, customer.id),
        customer.payment_terms,
        may_refund,
        may_change,
        prices,
        _tax_summary(customer),
    )


def _tax_summary(customer: BillingCustomer) -> str | None:
    parts = [item for item in (customer.tax_country, customer.tax_region) if item]
    if customer.vat_id:
        parts.append(f"VAT id {customer.vat_id}")
    if customer.tax_exempt != "none":
        parts.append("reverse charge" if customer.tax_exempt == "reverse" else "tax exempt")
    return " · ".join(parts) or None


def _dunning(session: Session, customer_id: int) -> list[DunningView]:
    """Each past-due or unpaid subscription with its open invoice's latest failure."""
    views = []
    for subscription in session.scalars(
        select(Subscription)
        .where(
            Subscription.customer_id == customer_id,
            Subscription.status.in_((SubscriptionStatus.PAST_DUE.value, SubscriptionStatus.UNPAID.value)),
        )
        .order_by(Subscription.id)
    ):
        invoice = session.scalars(
            select(Invoice)
            .where(Invoice.subscription_id == subscription.id, Invoice.status == "open")
            .order_by(Invoice.id.desc())
            .limit(1)
        ).first()
        views.append(
            DunningView(
                subscription.id,
                subscription.status,
                subscription.past_due_since,
                explain_failure(invoice.last_failure_code) if invoice is not None else None,
                invoice.next_payment_attempt_at if invoice is not None else None,
                invoice.payment_attempts if invoice is not None else 0,
                invoice.number if invoice is not None else None,
            )
        )
    return views
