"""Comparing opsdesk's ledger with the provider's records: pure, streaming-friendly, O(n).

Charges are matched by the provider's charge id. A charge only one side knows is missing on the
other; a matched pair is checked for currency, amount and refunded amount. Two provider charges
of the same customer, invoice, amount and currency are a duplicate charge (the customer paid
twice). Subscriptions are matched by the provider's subscription id and compared by status.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from opsdesk.billing.enums import DiscrepancyKind


class LedgerCharge(NamedTuple):
    # NamedTuples: a million of each side are built per run, and tuples build fastest.
    external_id: str
    amount_minor: int
    currency: str
    refunded_minor: int
    payment_id: int
    customer_id: int
    account_id: int


class ProviderCharge(NamedTuple):
    external_id: str
    amount_minor: int
    currency: str
    refunded_minor: int
    customer_ref: str | None = None
    invoice_ref: str | None = None


@dataclass(frozen=True, slots=True)
class Found:
    kind: DiscrepancyKind
    external_id: str
    detail: str
    ledger_value: str | None = None
    provider_value: str | None = None
    payment_id: int | None = None
    customer_id: int | None = None
    account_id: int | None = None
    subscription_id: int | None = None


def compare_charges(ledger: Iterable[LedgerCharge], provider: Iterable[ProviderCharge]) -> Iterator[Found]:
    """Every difference between the two sides, ledger-known charges first."""
    by_id: dict[str, LedgerCharge] = {}
    for charge in ledger:
        if charge.external_id in by_id:
            yield Found(
                DiscrepancyKind.DUPLICATE_CHARGE,
                charge.external_id,
                "the ledger records this provider charge twice",
                payment_id=charge.payment_id,
                customer_id=charge.customer_id,
                account_id=charge.account_id,
            )
            continue
        by_id[charge.external_id] = charge
    seen: set[str] = set()
    paid_twice: dict[tuple[str, str, int, str], str] = {}
    for remote in provider:
        if remote.external_id in seen:
            continue
        seen.add(remote.external_id)
        local = by_id.get(remote.external_id)
        remote_value = f"{remote.amount_minor} {remote.currency}"
        if remote.invoice_ref and remote.customer_ref and remote.amount_minor > remote.refunded_minor:
            key = (remote.customer_ref, remote.invoice_ref, remote.amount_minor, remote.currency)
            first = paid_twice.get(key)
            if first is None:
                paid_twice[key] = remote.external_id
            else:
                detail = f"charged twice for invoice {remote.invoice_ref} (also {first})"
                yield _found(
                    DiscrepancyKind.DUPLICATE_CHARGE,
                    remote.external_id,
                    detail,
                    local,
                    provider_value=remote_value,
                )
        if local is None:
            yield _found(
                DiscrepancyKind.MISSING_IN_LEDGER,
                remote.external_id,
                "the provider has this charge; the ledger does not",
                None,
                provider_value=remote_value,
            )
            continue
        if local.currency != remote.currency:
            yield _found(
                DiscrepancyKind.CURRENCY_MISMATCH,
                remote.external_id,
                "the currencies differ",
                local,
                local.currency,
                remote.currency,
            )
        elif local.amount_minor != remote.amount_minor:
            yield _found(
                DiscrepancyKind.AMOUNT_MISMATCH,
                remote.external_id,
                "the amounts differ",
                local,
                str(local.amount_minor),
                str(remote.amount_minor),
            )
        if local.refunded_minor != remote.refunded_minor:
            yield _found(
                DiscrepancyKind.REFUND_NOT_REFLECTED,
                remote.external_id,
                "the refunded amounts differ",
                local,
                str(local.refunded_minor),
                str(remote.refunded_minor),
            )
    for external_id, local in by_id.items():
        if external_id not in seen:
            yield _found(
                DiscrepancyKind.MISSING_AT_PROVIDER,
                external_id,
                "the ledger has this charge; the provider does not",
                local,
                ledger_value=f"{local.amount_minor} {local.currency}",
            )


def _found(
    kind: DiscrepancyKind,
    external_id: str,
    detail: str,
    local: LedgerCharge | None,
    ledger_value: str | None = None,
    provider_value: str | None = None,
) -> Found:
    if local is None:
        return Found(kind, external_id, detail, ledger_value, provider_value)
    return Found(
        kind,
        external_id,
        detail,
        ledger_value,
        provider_value,
        local.payment_id,
        local.customer_id,
        local.account_id,
    )


@dataclass(frozen=True, slots=True)
class LedgerSubscription:
    external_id: str
    status: str
    subscription_id: int
    customer_id: int
    account_id: int


def compare_subscriptions(
    ledger: Iterable[LedgerSubscription], provider_statuses: dict[str, str]
) -> Iterator[Found]:
    for local in ledger:
        remote = provider_statuses.get(local.external_id)
        if remote is not None and remote != local.status:
            yield Found(
                DiscrepancyKind.SUBSCRIPTION_STATUS_MISMATCH,
                local.external_id,
                "the subscription's status differs",
                local.status,
                remote,
                customer_id=local.customer_id,
                account_id=local.account_id,
                subscription_id=local.subscription_id,
            )
