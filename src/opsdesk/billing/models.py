"""Tables of billing: products and prices, billing customers, subscriptions, invoices and their
lines, payments, refunds, credit notes, disputes, FX rates, refund limits, the raw Stripe events
and reconciliation runs.

Money is always an integer amount in the currency's minor unit (``*_amount_minor``) beside an
ISO 4217 ``currency``. Invariants the services keep:
- a payment's ``refunded_amount_minor`` never exceeds its ``amount_minor`` and only moves through
  SQL expressions (no read-modify-write), and refunds awaiting approval reserve their amount;
- an invoice balances: ``subtotal = sum(lines)``, ``total = subtotal + tax``,
  ``amount_due = total - credit_applied - amount_paid`` and is never negative;
- a customer's ``credit_balance_minor`` is the sum of credit notes not yet applied to invoices.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opsdesk import clock
from opsdesk.automation.models import Macro
from opsdesk.db import Base, BigId
from opsdesk.tickets.models import Account, Person


class BillingProduct(Base):
    """A plan customers buy (Starter, Team, Enterprise); its prices say how it is charged."""

    __tablename__ = "billing_products"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    stripe_product_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    prices: Mapped[list[BillingPrice]] = relationship(back_populates="product", order_by="BillingPrice.id")


class BillingPrice(Base):
    """How a product is charged: per month or year, flat or per seat, in one currency."""

    __tablename__ = "billing_prices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("billing_products.id", ondelete="CASCADE"), index=True)
    nickname: Mapped[str] = mapped_column(String(200))
    interval: Mapped[str] = mapped_column(String(10))
    pricing_model: Mapped[str] = mapped_column(String(10))
    unit_amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    product: Mapped[BillingProduct] = relationship(back_populates="prices", lazy="joined")


class BillingCustomer(Base):
    """Who pays: an account (and its billing contact), with terms and a credit balance."""

    __tablename__ = "billing_customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    currency: Mapped[str] = mapped_column(String(3))
    provider: Mapped[str] = mapped_column(String(10), default="local")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    payment_terms: Mapped[str] = mapped_column(String(10), default="card")
    po_number: Mapped[str | None] = mapped_column(String(100))
    credit_balance_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    # The card's state for the local ledger: "valid" or a decline code that the next charge gets.
    card_state: Mapped[str] = mapped_column(String(40), default="valid")
    tos_version: Mapped[str | None] = mapped_column(String(40))
    tos_accepted_at: Mapped[datetime | None] = mapped_column()
    tos_accepted_ip: Mapped[str | None] = mapped_column(String(64))
    # Where the customer is taxed (ISO 3166 country, optional region such as a US state), and
    # Stripe's tax_exempt: "none", "exempt", or "reverse" (reverse charge, EU B2B with a VAT id).
    tax_country: Mapped[str | None] = mapped_column(String(2))
    tax_region: Mapped[str | None] = mapped_column(String(10))
    tax_exempt: Mapped[str] = mapped_column(String(10), default="none", server_default="none")
    vat_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    account: Mapped[Account] = relationship(lazy="joined")
    person: Mapped[Person | None] = relationship(lazy="joined")


class Subscription(Base):
    __tablename__ = "billing_subscriptions"
    __table_args__ = (Index("ix_billing_subscriptions_status_period_end", "status", "current_period_end"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="CASCADE"), index=True
    )
    price_id: Mapped[int] = mapped_column(ForeignKey("billing_prices.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    seats: Mapped[int] = mapped_column(Integer, default=1)
    current_period_start: Mapped[datetime] = mapped_column()
    current_period_end: Mapped[datetime] = mapped_column()
    # Periods are counted from here (Stripe's billing_cycle_anchor); reset by an interval switch.
    # Empty on rows from before it existed: their current period start stands in.
    billing_cycle_anchor: Mapped[datetime | None] = mapped_column()
    trial_end: Mapped[datetime | None] = mapped_column()
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    canceled_at: Mapped[datetime | None] = mapped_column()
    paused_at: Mapped[datetime | None] = mapped_column()
    past_due_since: Mapped[datetime | None] = mapped_column()
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    customer: Mapped[BillingCustomer] = relationship(lazy="joined", innerjoin=True)
    price: Mapped[BillingPrice] = relationship(lazy="joined", innerjoin=True)

    @property
    def renews_at(self) -> datetime | None:
        if self.status == "canceled" or self.cancel_at_period_end:
            return None
        return self.current_period_end


class Invoice(Base):
    __tablename__ = "billing_invoices"
    __table_args__ = (Index("ix_billing_invoices_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="CASCADE"), index=True
    )
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("billing_subscriptions.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    subtotal_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    tax_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    total_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    credit_applied_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_paid_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_due_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    payment_terms: Mapped[str] = mapped_column(String(10), default="card")
    po_number: Mapped[str | None] = mapped_column(String(100))
    period_start: Mapped[datetime | None] = mapped_column()
    period_end: Mapped[datetime | None] = mapped_column()
    issued_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    paid_at: Mapped[datetime | None] = mapped_column()
    payment_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_payment_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    last_failure_code: Mapped[str | None] = mapped_column(String(60))
    reminders_sent: Mapped[list[str]] = mapped_column(default=list)
    # What the invoice says about its tax ("VAT 20%", "Reverse charge: ...", "Tax exempt customer").
    tax_note: Mapped[str | None] = mapped_column(String(200))
    stripe_invoice_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    customer: Mapped[BillingCustomer] = relationship(lazy="joined", innerjoin=True)
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.id", lazy="selectin"
    )


class InvoiceLine(Base):
    """A line of an invoice; proration lines waiting for the next invoice have no invoice yet."""

    __tablename__ = "billing_invoice_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("billing_invoices.id", ondelete="CASCADE"), index=True
    )
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("billing_subscriptions.id", ondelete="SET NULL"), index=True
    )
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(500))
    price_id: Mapped[int | None] = mapped_column(ForeignKey("billing_prices.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    # The line's tax, rounded on its own; an inclusive rate's line is stored at its net amount.
    tax_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    tax_rate_id: Mapped[int | None] = mapped_column(ForeignKey("billing_tax_rates.id", ondelete="SET NULL"))
    currency: Mapped[str] = mapped_column(String(3))
    period_start: Mapped[datetime | None] = mapped_column()
    period_end: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    invoice: Mapped[Invoice | None] = relationship(back_populates="lines")


class TaxRate(Base):
    """A tax rate an admin keeps: country (and optionally region), basis points (2000 = 20 %),
    inclusive or exclusive, its name ("VAT", "Sales tax"), and the days it is in force."""

    __tablename__ = "billing_tax_rates"
    __table_args__ = (Index("ix_billing_tax_rates_country_region", "country", "region"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(10))
    rate_basis_points: Mapped[int] = mapped_column(Integer)
    inclusive: Mapped[bool] = mapped_column(Boolean, default=False)
    tax_name: Mapped[str] = mapped_column(String(40))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Payment(Base):
    """A charge: captured money (or a failed attempt) against an invoice or on its own."""

    __tablename__ = "billing_payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("billing_invoices.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    refunded_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    # Refunds waiting for a lead's approval hold their amount so approvals cannot over-refund.
    reserved_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    failure_code: Mapped[str | None] = mapped_column(String(60))
    failure_message: Mapped[str | None] = mapped_column(Text)
    card_brand: Mapped[str | None] = mapped_column(String(20))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    stripe_charge_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)

    customer: Mapped[BillingCustomer] = relationship(lazy="joined", innerjoin=True)

    @property
    def refundable_amount_minor(self) -> int:
        if self.status != "succeeded":
            return 0
        return self.amount_minor - self.refunded_amount_minor - self.reserved_amount_minor


class Refund(Base):
    __tablename__ = "billing_refunds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("billing_payments.id", ondelete="CASCADE"), index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requested_by_name: Mapped[str] = mapped_column(String(200), default="")
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_note: Mapped[str | None] = mapped_column(Text)
    stripe_refund_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    payment: Mapped[Payment] = relationship(lazy="joined", innerjoin=True)


class CreditNote(Base):
    """Money owed back to a customer as credit: it raises the balance the next invoices use."""

    __tablename__ = "billing_credit_notes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("billing_invoices.id", ondelete="SET NULL"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(200))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Dispute(Base):
    """An inquiry or chargeback on a payment, mirrored from the provider, with its ticket."""

    __tablename__ = "billing_disputes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("billing_payments.id", ondelete="SET NULL"), index=True
    )
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("billing_customers.id", ondelete="SET NULL"), index=True
    )
    stripe_dispute_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(30), index=True)
    reason: Mapped[str] = mapped_column(String(40))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    fee_amount_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    evidence_due_at: Mapped[datetime | None] = mapped_column()
    evidence_submitted_at: Mapped[datetime | None] = mapped_column()
    evidence_packet_sha256: Mapped[str | None] = mapped_column(String(64))
    stripe_evidence_file_id: Mapped[str | None] = mapped_column(String(100))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    closed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    payment: Mapped[Payment | None] = relationship(lazy="joined")

    @property
    def is_inquiry(self) -> bool:
        return self.status.startswith("warning_")


class FxRate(Base):
    """How many units of ``quote_currency`` one unit of ``base_currency`` buys on a day."""

    __tablename__ = "billing_fx_rates"
    __table_args__ = (UniqueConstraint("base_currency", "quote_currency", "rate_on"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    base_currency: Mapped[str] = mapped_column(String(3))
    quote_currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    rate_on: Mapped[date] = mapped_column(Date)


class RefundLimit(Base):
    """The largest refund a role may issue without a lead's approval, per currency (admin-set)."""

    __tablename__ = "billing_refund_limits"
    __table_args__ = (UniqueConstraint("role", "currency"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    limit_amount_minor: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class BillingSetting(Base):
    """Team policy for billing that admins change in the product (not environment variables)."""

    __tablename__ = "billing_settings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    value: Mapped[str] = mapped_column(String(500))


class StripeEvent(Base):
    """A webhook delivery, stored verbatim before it is processed (so nothing is lost)."""

    __tablename__ = "billing_stripe_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    event_type: Mapped[str] = mapped_column(String(100), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(20), default="received")
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=clock.now)
    processed_at: Mapped[datetime | None] = mapped_column()


class ReconciliationRun(Base):
    __tablename__ = "billing_reconciliation_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(20))
    ledger_charges: Mapped[int] = mapped_column(Integer, default=0)
    provider_charges: Mapped[int] = mapped_column(Integer, default=0)
    discrepancy_count: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(default=clock.now)
    finished_at: Mapped[datetime | None] = mapped_column()
    started_by: Mapped[str] = mapped_column(String(200), default="")


class Discrepancy(Base):
    __tablename__ = "billing_discrepancies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("billing_reconciliation_runs.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str | None] = mapped_column(String(100))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("billing_customers.id", ondelete="SET NULL"))
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("billing_payments.id", ondelete="SET NULL"))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("billing_subscriptions.id", ondelete="SET NULL")
    )
    detail: Mapped[str] = mapped_column(Text)
    ledger_value: Mapped[str | None] = mapped_column(String(200))
    provider_value: Mapped[str | None] = mapped_column(String(200))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))


class NoticeMacroLink(Base):
    """Which shared macro tells customers about a billing notice (``refund_issued``, ...).

    Installed once per notice; ``macro_id`` becomes null when a person deletes the macro, and
    opsdesk then falls back to its built-in text (and says so in the audit trail)."""

    __tablename__ = "billing_notice_macros"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    notice: Mapped[str] = mapped_column(String(60), unique=True)
    macro_id: Mapped[int | None] = mapped_column(ForeignKey("macros.id", ondelete="SET NULL"))
    installed_at: Mapped[datetime] = mapped_column(default=clock.now)

    macro: Mapped[Macro | None] = relationship(lazy="joined")
