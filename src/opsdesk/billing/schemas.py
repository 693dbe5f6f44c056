"""Request and response shapes of the billing API (money always ``*_minor`` + ``currency``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from opsdesk.billing.models import Dispute, Invoice, Payment, Refund, Subscription


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChangePreviewRequest(StrictModel):
    price_id: int | None = None
    seats: int | None = Field(default=None, ge=1)


class ChangeRequest(ChangePreviewRequest):
    ticket_id: int | None = None


class ProrationLineOut(BaseModel):
    description: str
    amount_minor: int
    currency: str
    quantity: int
    unit_amount_minor: int
    price_id: int
    period_start: datetime
    period_end: datetime
    tax_amount_minor: int = 0


class ChangePreviewOut(BaseModel):
    subscription_id: int
    currency: str
    price_id: int
    seats: int
    lines: list[ProrationLineOut]
    net_amount_minor: int
    amount_due_now_minor: int
    proration_behavior: str
    # Monthly <-> annual: a new period from now to new_period_end, invoiced at once.
    resets_period: bool = False
    new_period_end: datetime | None = None
    tax_amount_minor: int = 0
    total_amount_minor: int = 0
    tax_note: str | None = None


class SubscriptionOut(BaseModel):
    id: int
    customer_id: int
    account_id: int
    status: str
    price_id: int
    plan: str
    seats: int
    unit_amount_minor: int
    currency: str
    interval: str
    current_period_start: datetime
    current_period_end: datetime
    renews_at: datetime | None
    cancel_at_period_end: bool
    paused: bool
    stripe_subscription_id: str | None

    @classmethod
    def of(cls, item: Subscription) -> SubscriptionOut:
        return cls(
            id=item.id,
            customer_id=item.customer_id,
            account_id=item.customer.account_id,
            status=item.status,
            price_id=item.price_id,
            plan=item.price.product.name,
            seats=item.seats,
            unit_amount_minor=item.price.unit_amount_minor,
            currency=item.price.currency,
            interval=item.price.interval,
            current_period_start=item.current_period_start,
            current_period_end=item.current_period_end,
            renews_at=item.renews_at,
            cancel_at_period_end=item.cancel_at_period_end,
            paused=item.paused_at is not None,
            stripe_subscription_id=item.stripe_subscription_id,
        )


class CancelRequest(StrictModel):
    mode: str
    ticket_id: int | None = None


class RefundRequest(StrictModel):
    amount_minor: int
    reason: str
    note: str = ""
    ticket_id: int | None = None


class TicketRefundRequest(StrictModel):
    amount_minor: int
    reason: str
    note: str = ""
    payment_id: int | None = None


class RefundOut(BaseModel):
    id: int
    payment_id: int
    amount_minor: int
    currency: str
    reason: str
    status: str
    ticket_id: int | None
    requested_by: str
    created_at: datetime

    @classmethod
    def of(cls, refund: Refund) -> RefundOut:
        return cls(
            id=refund.id,
            payment_id=refund.payment_id,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            reason=refund.reason,
            status=refund.status,
            ticket_id=refund.ticket_id,
            requested_by=refund.requested_by_name,
            created_at=refund.created_at,
        )


class RejectRequest(StrictModel):
    reason: str


class ApproveRequest(StrictModel):
    note: str = ""


class PaymentOut(BaseModel):
    id: int
    customer_id: int
    invoice_id: int | None
    status: str
    amount_minor: int
    refunded_amount_minor: int
    refundable_amount_minor: int
    currency: str
    failure_code: str | None
    card_brand: str | None
    card_last4: str | None
    stripe_charge_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, payment: Payment) -> PaymentOut:
        return cls(
            id=payment.id,
            customer_id=payment.customer_id,
            invoice_id=payment.invoice_id,
            status=payment.status,
            amount_minor=payment.amount_minor,
            refunded_amount_minor=payment.refunded_amount_minor,
            refundable_amount_minor=payment.refundable_amount_minor,
            currency=payment.currency,
            failure_code=payment.failure_code,
            card_brand=payment.card_brand,
            card_last4=payment.card_last4,
            stripe_charge_id=payment.stripe_charge_id,
            created_at=payment.created_at,
        )


class DisputeOut(BaseModel):
    id: int
    stripe_dispute_id: str | None
    stripe_charge_id: str | None
    payment_id: int | None
    customer_id: int | None
    status: str
    reason: str
    is_inquiry: bool
    amount_minor: int
    currency: str
    fee_amount_minor: int
    evidence_due_at: datetime | None
    evidence_submitted_at: datetime | None
    ticket_id: int | None
    closed_at: datetime | None

    @classmethod
    def of(cls, dispute: Dispute) -> DisputeOut:
        return cls(
            id=dispute.id,
            stripe_dispute_id=dispute.stripe_dispute_id,
            stripe_charge_id=dispute.stripe_charge_id,
            payment_id=dispute.payment_id,
            customer_id=dispute.customer_id,
            status=dispute.status,
            reason=dispute.reason,
            is_inquiry=dispute.is_inquiry,
            amount_minor=dispute.amount_minor,
            currency=dispute.currency,
            fee_amount_minor=dispute.fee_amount_minor,
            evidence_due_at=dispute.evidence_due_at,
            evidence_submitted_at=dispute.evidence_submitted_at,
            ticket_id=dispute.ticket_id,
            closed_at=dispute.closed_at,
        )


class DisputeList(BaseModel):
    items: list[DisputeOut]


class EvidenceRequest(StrictModel):
    fields: dict[str, str] = Field(default_factory=dict)


class OutcomeRequest(StrictModel):
    status: str
    fee_amount_minor: int = 0


class InvoiceLineIn(StrictModel):
    description: str
    quantity: int = 1
    unit_amount_minor: int


class InvoiceRequest(StrictModel):
    lines: list[InvoiceLineIn]
    tax_amount_minor: int | None = None  # None: computed per line from the tax location
    po_number: str | None = None
    payment_terms: str | None = None


class InvoiceOut(BaseModel):
    id: int
    number: str
    customer_id: int
    status: str
    currency: str
    subtotal_amount_minor: int
    tax_amount_minor: int
    total_amount_minor: int
    credit_applied_amount_minor: int
    amount_paid_minor: int
    amount_due_minor: int
    payment_terms: str
    po_number: str | None
    due_at: datetime | None
    lines: list[dict[str, Any]]

    @classmethod
    def of(cls, invoice: Invoice) -> InvoiceOut:
        return cls(
            id=invoice.id,
            number=invoice.number,
            customer_id=invoice.customer_id,
            status=invoice.status,
            currency=invoice.currency,
            subtotal_amount_minor=invoice.subtotal_amount_minor,
            tax_amount_minor=invoice.tax_amount_minor,
            total_amount_minor=invoice.total_amount_minor,
            credit_applied_amount_minor=invoice.credit_applied_amount_minor,
            amount_paid_minor=invoice.amount_paid_minor,
            amount_due_minor=invoice.amount_due_minor,
            payment_terms=invoice.payment_terms,
            po_number=invoice.po_number,
            due_at=invoice.due_at,
            lines=[
                {
                    "description": line.description,
                    "quantity": line.quantity,
                    "amount_minor": line.amount_minor,
                    "kind": line.kind,
                }
                for line in invoice.lines
            ],
        )


class BankPaymentRequest(StrictModel):
    amount_minor: int
    reference: str


class CreditRequest(StrictModel):
    amount_minor: int
    reason: str
    ticket_id: int | None = None


class RefundLimitRequest(StrictModel):
    role: str
    currency: str
    limit_amount_minor: int


class SettingsRequest(StrictModel):
    proration_behavior: str | None = None
    dispute_deadline_margin_hours: int | None = None
    seller_country: str | None = None


class SettingsOut(BaseModel):
    proration_behavior: str
    dispute_deadline_margin_hours: int
    seller_country: str | None = None


class TaxRateIn(StrictModel):
    country: str
    region: str | None = None
    rate_basis_points: int
    inclusive: bool = False
    tax_name: str
    valid_from: date
    valid_until: date | None = None


class TaxRateOut(BaseModel):
    id: int
    country: str
    region: str | None
    rate_basis_points: int
    inclusive: bool
    tax_name: str
    valid_from: date
    valid_until: date | None


class TaxRateList(BaseModel):
    items: list[TaxRateOut]


class CustomerTaxIn(StrictModel):
    country: str | None = None
    region: str | None = None
    exempt: str = "none"
    vat_id: str | None = None


class CustomerTaxOut(BaseModel):
    customer_id: int
    tax_country: str | None
    tax_region: str | None
    tax_exempt: str
    vat_id: str | None


class ReconciliationOut(BaseModel):
    id: int
    source: str
    ledger_charges: int
    provider_charges: int
    discrepancy_count: int
    counts: dict[str, int]
    discrepancies: list[dict[str, Any]]
