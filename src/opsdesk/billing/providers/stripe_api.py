"""The Stripe provider, through the official ``stripe`` SDK (``StripeClient``).

The API base comes from settings (``OPSDESK_STRIPE_API_BASE``) so tests point the SDK at a local
HTTP server and check each request. Stripe errors become :class:`ProviderError` with Stripe's
own message; a card error on a charge is an outcome (declined), not an exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import stripe

from opsdesk.billing.enums import STRIPE_REFUND_REASONS
from opsdesk.billing.errors import ProviderError
from opsdesk.billing.providers.base import ChargeOutcome, ProviderRefund, SubmittedEvidence
from opsdesk.billing.reconciliation_compare import ProviderCharge


class StripeProvider:
    name = "stripe"

    def __init__(self, api_key: str, api_base: str | None = None) -> None:
        addresses: dict[str, str] = {}
        if api_base:
            addresses = {"api": api_base, "files": api_base}
        self.client = stripe.StripeClient(
            api_key,
            base_addresses=addresses,  # type: ignore[arg-type]
            max_network_retries=1,
        )

    @staticmethod
    def _need(reference: str | None, what: str) -> str:
        if not reference:
            raise ProviderError(f"this {what} has no Stripe id; it is not mirrored from Stripe")
        return reference

    def create_refund(
        self, *, charge_ref: str | None, amount_minor: int, currency: str, reason: str, idempotency_key: str
    ) -> ProviderRefund:
        del currency
        params: dict[str, Any] = {
            "charge": self._need(charge_ref, "charge"),
            "amount": amount_minor,
            "metadata": {"opsdesk_reason": reason},
        }
        if reason in STRIPE_REFUND_REASONS:
            params["reason"] = reason
        try:
            refund = self.client.v1.refunds.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise ProviderError(f"Stripe refused the refund: {error.user_message or error}") from error
        return ProviderRefund(refund.id, str(refund.status))

    def update_subscription(
        self,
        *,
        subscription_ref: str | None,
        price_ref: str | None,
        quantity: int,
        proration_behavior: str,
        idempotency_key: str,
    ) -> None:
        reference = self._need(subscription_ref, "subscription")
        try:
            current = self.client.v1.subscriptions.retrieve(reference)
            item_id = current["items"]["data"][0]["id"]
            item: dict[str, Any] = {"id": item_id, "quantity": quantity}
            if price_ref:
                item["price"] = price_ref
            self.client.v1.subscriptions.update(
                reference,
                params={"items": [item], "proration_behavior": proration_behavior},  # type: ignore[typeddict-item,arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise ProviderError(f"Stripe refused the change: {error.user_message or error}") from error

    def cancel_subscription(
        self, *, subscription_ref: str | None, at_period_end: bool, idempotency_key: str
    ) -> None:
        reference = self._need(subscription_ref, "subscription")
        try:
            if at_period_end:
                self.client.v1.subscriptions.update(
                    reference,
                    params={"cancel_at_period_end": True},
                    options={"idempotency_key": idempotency_key},
                )
            else:
                self.client.v1.subscriptions.cancel(
                    reference, params={"prorate": False}, options={"idempotency_key": idempotency_key}
                )
        except stripe.StripeError as error:
            raise ProviderError(f"Stripe refused the cancellation: {error.user_message or error}") from error

    def undo_cancel_at_period_end(self, *, subscription_ref: str | None, idempotency_key: str) -> None:
        reference = self._need(subscription_ref, "subscription")
        try:
            self.client.v1.subscriptions.update(
                reference,
                params={"cancel_at_period_end": False},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise ProviderError(f"Stripe refused the reactivation: {error.user_message or error}") from error

    def set_paused(self, *, subscription_ref: str | None, paused: bool, idempotency_key: str) -> None:
        reference = self._need(subscription_ref, "subscription")
        params: dict[str, Any] = {"pause_collection": {"behavior": "void"} if paused else ""}
        try:
            self.client.v1.subscriptions.update(
                reference,
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise ProviderError(f"Stripe refused the pause: {error.user_message or error}") from error

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
        del customer_ref, amount_minor, currency, card_state
        reference = self._need(invoice_ref, "invoice")
        try:
            invoice = self.client.v1.invoices.pay(reference, options={"idempotency_key": idempotency_key})
        except stripe.CardError as error:
            return ChargeOutcome(False, None, error.code, error.user_message)
        except stripe.StripeError as error:
            raise ProviderError(
                f"Stripe could not collect the invoice: {error.user_message or error}"
            ) from error
        raw: dict[str, Any] = invoice.to_dict()
        charge = raw.get("charge")
        charge_id = charge if isinstance(charge, str) else (charge or {}).get("id")
        return ChargeOutcome(raw.get("status") == "paid", charge_id)

    def submit_dispute_evidence(
        self,
        *,
        dispute_ref: str | None,
        evidence: dict[str, str],
        packet_pdf: bytes,
        idempotency_key: str,
    ) -> SubmittedEvidence:
        reference = self._need(dispute_ref, "dispute")
        try:
            uploaded = self.client.v1.files.create(
                params={
                    "purpose": "dispute_evidence",
                    "file": ("evidence.pdf", packet_pdf, "application/pdf"),  # type: ignore[typeddict-item]
                },
                options={"idempotency_key": idempotency_key + ":file"},
            )
            fields: dict[str, Any] = {**evidence, "uncategorized_file": uploaded.id}
            dispute = self.client.v1.disputes.update(
                reference,
                params={"evidence": fields, "submit": True},  # type: ignore[typeddict-item,arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise ProviderError(f"Stripe refused the evidence: {error.user_message or error}") from error
        return SubmittedEvidence(uploaded.id, str(dispute.status))

    def list_charges(self) -> Iterator[ProviderCharge]:
        try:
            for charge in self.client.v1.charges.list(params={"limit": 100}).auto_paging_iter():
                if charge.status != "succeeded" or not charge.captured:
                    continue
                raw: dict[str, Any] = charge.to_dict()
                customer = raw.get("customer")
                invoice = raw.get("invoice")
                yield ProviderCharge(
                    external_id=charge.id,
                    amount_minor=int(charge.amount),
                    currency=str(charge.currency).upper(),
                    refunded_minor=int(charge.amount_refunded),
                    customer_ref=customer if isinstance(customer, str) else None,
                    invoice_ref=invoice if isinstance(invoice, str) else None,
                )
        except stripe.StripeError as error:
            raise ProviderError(f"Stripe could not list charges: {error.user_message or error}") from error

    def subscription_statuses(self) -> dict[str, str]:
        try:
            return {
                subscription.id: str(subscription.status)
                for subscription in self.client.v1.subscriptions.list(
                    params={"status": "all", "limit": 100}
                ).auto_paging_iter()
            }
        except stripe.StripeError as error:
            raise ProviderError(
                f"Stripe could not list subscriptions: {error.user_message or error}"
            ) from error
