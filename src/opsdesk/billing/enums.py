"""The fixed vocabularies of billing, spelled the way Stripe spells them where Stripe has a word."""

from __future__ import annotations

from enum import StrEnum


class Interval(StrEnum):
    MONTH = "month"
    YEAR = "year"


class PricingModel(StrEnum):
    """A flat price per period, or a unit price multiplied by the number of seats."""

    FLAT = "flat"
    PER_SEAT = "per_seat"


class SubscriptionStatus(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    CANCELED = "canceled"
    INCOMPLETE = "incomplete"


BILLABLE_STATUSES: frozenset[str] = frozenset({"trialing", "active", "past_due"})


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class PaymentTerms(StrEnum):
    """Card: charged automatically. Net terms: an invoice sent with a due date (enterprise)."""

    CARD = "card"
    NET_15 = "net_15"
    NET_30 = "net_30"
    NET_60 = "net_60"

    @property
    def days(self) -> int:
        return {"card": 0, "net_15": 15, "net_30": 30, "net_60": 60}[self.value]


class InvoiceLineKind(StrEnum):
    SUBSCRIPTION = "subscription"
    PRORATION = "proration"
    ONE_OFF = "one_off"


class PaymentStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PENDING = "pending"


class RefundStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"


class RefundReason(StrEnum):
    """Stripe's refund reasons plus the reasons support teams actually use."""

    REQUESTED_BY_CUSTOMER = "requested_by_customer"
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    SERVICE_ISSUE = "service_issue"
    CANCELLATION = "cancellation"
    GOODWILL = "goodwill"


STRIPE_REFUND_REASONS: frozenset[str] = frozenset({"requested_by_customer", "duplicate", "fraudulent"})


class DisputeStatus(StrEnum):
    WARNING_NEEDS_RESPONSE = "warning_needs_response"
    WARNING_UNDER_REVIEW = "warning_under_review"
    WARNING_CLOSED = "warning_closed"
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    WON = "won"
    LOST = "lost"
    PREVENTED = "prevented"


# An inquiry (Stripe's "warning_*" statuses) is not yet a chargeback: the charge stays refundable.
INQUIRY_STATUSES: frozenset[str] = frozenset(
    {"warning_needs_response", "warning_under_review", "warning_closed"}
)
OPEN_CHARGEBACK_STATUSES: frozenset[str] = frozenset({"needs_response", "under_review"})
CLOSED_DISPUTE_STATUSES: frozenset[str] = frozenset({"warning_closed", "won", "lost", "prevented"})


class DisputeReason(StrEnum):
    BANK_CANNOT_PROCESS = "bank_cannot_process"
    CHECK_RETURNED = "check_returned"
    CREDIT_NOT_PROCESSED = "credit_not_processed"
    CUSTOMER_INITIATED = "customer_initiated"
    DEBIT_NOT_AUTHORIZED = "debit_not_authorized"
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    GENERAL = "general"
    INCORRECT_ACCOUNT_DETAILS = "incorrect_account_details"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    NOOP = "noop"
    PRODUCT_NOT_RECEIVED = "product_not_received"
    PRODUCT_UNACCEPTABLE = "product_unacceptable"
    SUBSCRIPTION_CANCELED = "subscription_canceled"
    UNRECOGNIZED = "unrecognized"


# Stripe's text evidence fields (files such as receipts go in as one uploaded PDF packet).
DISPUTE_EVIDENCE_TEXT_FIELDS: tuple[str, ...] = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "uncategorized_text",
)


class ProrationBehavior(StrEnum):
    """Where the net of a mid-period change goes: the next invoice, or an invoice now."""

    NEXT_INVOICE = "create_prorations"
    INVOICE_NOW = "always_invoice"


class CancelMode(StrEnum):
    AT_PERIOD_END = "at_period_end"
    NOW_WITH_REFUND = "now_with_refund"
    NOW_WITH_CREDIT = "now_with_credit"
    NOW_WITHOUT_PRORATION = "now"


class DiscrepancyKind(StrEnum):
    MISSING_IN_LEDGER = "missing_in_ledger"
    MISSING_AT_PROVIDER = "missing_at_provider"
    DUPLICATE_CHARGE = "duplicate_charge"
    REFUND_NOT_REFLECTED = "refund_not_reflected"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    SUBSCRIPTION_STATUS_MISMATCH = "subscription_status_mismatch"


class WebhookEventStatus(StrEnum):
    RECEIVED = "received"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


class ProviderName(StrEnum):
    LOCAL = "local"
    STRIPE = "stripe"
