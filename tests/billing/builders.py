"""Billing test data built through the real services."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from opsdesk.billing.models import BillingCustomer, BillingPrice, Invoice, Payment, Subscription
from opsdesk.billing.service import catalog, invoicing
from opsdesk.tickets.models import Account
from tests.support.factories import SYSTEM, make_account

START = datetime(2026, 3, 1, tzinfo=UTC)
_numbers = itertools.count(1)


@dataclass
class Billed:
    account: Account
    customer: BillingCustomer
    monthly: BillingPrice
    premium: BillingPrice
    subscription: Subscription


def make_prices(session: Session, currency: str = "USD") -> tuple[BillingPrice, BillingPrice]:
    number = next(_numbers)
    team = catalog.create_product(session, SYSTEM, code=f"team-{number}", name="Team")
    business = catalog.create_product(session, SYSTEM, code=f"business-{number}", name="Business")
    monthly = catalog.create_price(
        session,
        SYSTEM,
        team,
        nickname="Monthly",
        interval="month",
        pricing_model="per_seat",
        unit_amount_minor=2_000,
        currency=currency,
        stripe_price_id=f"price_team_{number}",
    )
    premium = catalog.create_price(
        session,
        SYSTEM,
        business,
        nickname="Monthly",
        interval="month",
        pricing_model="per_seat",
        unit_amount_minor=5_000,
        currency=currency,
        stripe_price_id=f"price_business_{number}",
    )
    return monthly, premium


def make_billed(
    session: Session,
    *,
    seats: int = 10,
    provider: str = "local",
    currency: str = "USD",
    email: str | None = None,
    start: datetime = START,
    domain: str | None = None,
) -> Billed:
    number = next(_numbers)
    account = make_account(session, name=f"Customer {number}", domain=domain)
    monthly, premium = make_prices(session, currency)
    customer = catalog.create_customer(
        session,
        SYSTEM,
        account,
        email=email or f"billing{number}@customer{number}.example.org",
        currency=currency,
        provider=provider,
        stripe_customer_id=f"cus_{number:06d}" if provider == "stripe" else None,
        card_brand="visa",
        card_last4="4242",
        tos_version="2026-01",
        tos_accepted_at=START,
        tos_accepted_ip="203.0.113.9",
    )
    subscription = catalog.create_subscription(
        session,
        SYSTEM,
        customer,
        monthly,
        seats=seats,
        start=start,
        stripe_subscription_id=f"sub_{number:06d}" if provider == "stripe" else None,
    )
    return Billed(account, customer, monthly, premium, subscription)


def make_paid_charge(
    session: Session, customer: BillingCustomer, amount_minor: int, *, charge_id: str | None = None
) -> Payment:
    """A captured card payment: mirrored as Stripe's webhook records it for Stripe customers, or a
    paid one-off invoice for the local ledger."""
    if customer.provider == "stripe":
        mirrored = Payment(
            customer_id=customer.id,
            status="succeeded",
            amount_minor=amount_minor,
            currency=customer.currency,
            refunded_amount_minor=0,
            reserved_amount_minor=0,
            card_brand="visa",
            card_last4="4242",
            stripe_charge_id=charge_id,
        )
        session.add(mirrored)
        session.flush()
        return mirrored
    invoice: Invoice = invoicing.create_invoice(
        session, SYSTEM, customer, lines=[invoicing.ManualLine("Seats", 1, amount_minor)]
    )
    assert invoice.status == "paid", invoice.status
    payment = session.query(Payment).filter(Payment.invoice_id == invoice.id).one()
    if charge_id is not None:
        payment.stripe_charge_id = charge_id
        session.flush()
    return payment
