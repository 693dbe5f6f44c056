"""The local provider: opsdesk is the ledger (the embedded default and the demo).

There is no one else to ask, so refunds and subscription changes succeed at once with ids made
here; a charge succeeds unless the customer's card on file is in a declined state (the card's
``card_state`` holds the decline code a real processor would answer with).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from opsdesk.billing.errors import ProviderError
from opsdesk.billing.providers.base import ChargeOutcome, ProviderRefund, SubmittedEvidence
from opsdesk.billing.reconciliation_compare import ProviderCharge


def _local_id(prefix: str, idempotency_key: str) -> str:
    # Derived from the idempotency key, so a retried call answers with the same id.
    return f"{prefix}_local_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]}"


class LocalProvider:
    name = "local"

    def create_refund(
        self, *, charge_ref: str | None, amount_minor: int, currency: str, reason: str, idempotency_key: str
    ) -> ProviderRefund:
        del charge_ref, amount_minor, currency, reason
        return ProviderRefund(_local_id("re", idempotency_key), "succeeded")

    def update_subscription(
        self,
        *,
        subscription_ref: str | None,
        price_ref: str | None,
        quantity: int,
        proration_behavior: str,
        idempotency_key: str,
    ) -> None:
        del subscription_ref, price_ref, quantity, proration_behavior, idempotency_key

    def cancel_subscription(
        self, *, subscription_ref: str | None, at_period_end: bool, idempotency_key: str
    ) -> None:
        del subscription_ref, at_period_end, idempotency_key

    def undo_cancel_at_period_end(self, *, subscription_ref: str | None, idempotency_key: str) -> None:
        del subscription_ref, idempotency_key

    def set_paused(self, *, subscription_ref: str | None, paused: bool, idempotency_key: str) -> None:
        del subscription_ref, paused, idempotency_key

    def charge(
        self,
        *,
        customer_ref: str | None,
        invoice_ref: str | None,
        amount_minor: int,
        currency: str,
        card_state: str,
        idempotency_key: str,
    ) -> ChargeOutcome:
        del customer_ref, invoice_ref, amount_minor, currency
        if card_state != "valid":
            return ChargeOutcome(False, _local_id("ch", idempotency_key), card_state, "card declined")
        return ChargeOutcome(True, _local_id("ch", idempotency_key))

    def submit_dispute_evidence(
        self,
        *,
        dispute_ref: str | None,
        evidence: dict[str, str],
        packet_pdf: bytes,
        idempotency_key: str,
    ) -> SubmittedEvidence:
        del dispute_ref, evidence
        return SubmittedEvidence(_local_id("file", idempotency_key + str(len(packet_pdf))), "under_review")

    def list_charges(self) -> Iterator[ProviderCharge]:
        raise ProviderError(
            "the local ledger has no outside record to compare with; reconcile against a Stripe CSV export"
        )

    def subscription_statuses(self) -> dict[str, str]:
        return {}
