"""The ``BillingProvider`` protocol: what opsdesk asks of whoever moves the money.

Every call that changes money carries an idempotency key, so a retried request (after a timeout
or a crash between the provider's answer and our commit) never refunds or charges twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from opsdesk.billing.reconciliation_compare import ProviderCharge


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    external_id: str
    status: str


@dataclass(frozen=True, slots=True)
class ChargeOutcome:
    succeeded: bool
    external_id: str | None
    failure_code: str | None = None
    failure_message: str | None = None


@dataclass(frozen=True, slots=True)
class SubmittedEvidence:
    file_id: str | None
    status: str


class BillingProvider(Protocol):
    name: str

    def create_refund(
        self, *, charge_ref: str | None, amount_minor: int, currency: str, reason: str, idempotency_key: str
    ) -> ProviderRefund: ...

    def update_subscription(
        self,
        *,
        subscription_ref: str | None,
        price_ref: str | None,
        quantity: int,
        proration_behavior: str,
        idempotency_key: str,
    ) -> None: ...

    def cancel_subscription(
        self, *, subscription_ref: str | None, at_period_end: bool, idempotency_key: str
    ) -> None: ...

    def undo_cancel_at_period_end(self, *, subscription_ref: str | None, idempotency_key: str) -> None: ...

    def set_paused(self, *, subscription_ref: str | None, paused: bool, idempotency_key: str) -> None: ...

    def charge(
        self,
        *,
        customer_ref: str | None,
        invoice_ref: str | None,
        amount_minor: int,
        currency: str,
        card_state: str,
        idempotency_key: str,
    ) -> ChargeOutcome: ...

    def submit_dispute_evidence(
        self,
        *,
        dispute_ref: str | None,
        evidence: dict[str, str],
        packet_pdf: bytes,
        idempotency_key: str,
    ) -> SubmittedEvidence: ...

    def list_charges(self) -> Iterator[ProviderCharge]: ...

    def subscription_statuses(self) -> dict[str, str]: ...
