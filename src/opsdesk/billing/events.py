"""Billing events, past tense, published in the transaction of the change that caused them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RefundIssued:
    refund_id: int
    payment_id: int
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class RefundApprovalRequested:
    refund_id: int
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class SubscriptionChanged:
    subscription_id: int
    changes: dict[str, tuple[object, object]]


@dataclass(frozen=True, slots=True)
class SubscriptionCanceled:
    subscription_id: int
    at_period_end: bool


@dataclass(frozen=True, slots=True)
class PaymentFailed:
    payment_id: int
    subscription_id: int | None
    failure_code: str | None


@dataclass(frozen=True, slots=True)
class DisputeOpened:
    dispute_id: int
    ticket_id: int | None
    evidence_due_at: datetime | None


@dataclass(frozen=True, slots=True)
class DisputeClosed:
    dispute_id: int
    status: str


@dataclass(frozen=True, slots=True)
class InvoiceFinalized:
    invoice_id: int
