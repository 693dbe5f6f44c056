"""Billing errors with stable codes; the API answers them as problem+json."""

from __future__ import annotations

from opsdesk.errors import ConflictError, DomainError, NotFoundError, ValidationFailedError


class BillingNotFoundError(NotFoundError):
    code = "billing_not_found"


class InvalidBillingRequestError(ValidationFailedError):
    code = "invalid_billing_request"


class RefundRefusedError(DomainError):
    code = "refund_refused"
    status = 409
    title = "Refund refused"


class DisputeRefusedError(DomainError):
    code = "dispute_refused"
    status = 409
    title = "Dispute action refused"


class SubscriptionChangeRefusedError(ConflictError):
    code = "subscription_change_refused"
    title = "Subscription change refused"


class ProviderError(DomainError):
    """The payment provider refused or failed a request; nothing was changed in opsdesk."""

    code = "provider_error"
    status = 502
    title = "Payment provider error"


class WebhookSignatureError(DomainError):
    code = "bad_signature"
    status = 400
    title = "Webhook signature not valid"


class ReconciliationInputError(ValidationFailedError):
    code = "bad_reconciliation_input"
