"""Reading Stripe's CSV exports (the charges/payments export and the balance export) into
provider charges. Pure parsing: amounts come in major units ("12.50") and become minor units
by string arithmetic with the currency's digits (no floats)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from functools import lru_cache

from opsdesk.billing.reconciliation_compare import ProviderCharge
from opsdesk.money import minor_digits


class CsvFormatError(ValueError):
    """The file is not a Stripe charges or balance export."""


@lru_cache(maxsize=256)
def _digits(currency: str) -> int:
    return int(minor_digits(currency))


def to_minor(amount: str, currency: str) -> int:
    """``"1,234.50"`` in USD → 123450; refuses more decimals than the currency has."""
    text = amount.strip().replace(",", "")
    if not text:
        return 0
    negative = text.startswith("-")
    text = text.lstrip("+-")
    whole, _, fraction = text.partition(".")
    digits = _digits(currency)
    fraction = fraction.rstrip("0")
    if len(fraction) > digits or not (whole or fraction) or not (whole + fraction).isdigit():
        raise CsvFormatError(f"{amount!r} is not an amount in {currency}")
    value: int = int(whole or "0") * 10**digits + int((fraction or "0").ljust(digits, "0") or "0")
    return -value if negative else value


def _lower_keys(row: dict[str, str]) -> dict[str, str]:
    return {
        key.strip().lower().replace("_", " "): (value or "") for key, value in row.items() if key is not None
    }


def read_export(lines: Iterable[str]) -> Iterator[ProviderCharge]:
    """Charges from either export; the format is known from the header row."""
    reader = csv.DictReader(lines)
    header = {name.strip().lower() for name in (reader.fieldnames or [])}
    if {"id", "amount", "currency"} <= header and ("amount refunded" in header or "status" in header):
        yield from _charges_export(reader)
    elif {"source", "type", "amount", "currency"} <= header:
        yield from _balance_export(reader)
    else:
        raise CsvFormatError(
            "expected a Stripe charges export (id, Amount, Amount Refunded, Currency) or a balance "
            "export (Source, Type, Amount, Currency)"
        )


def _charges_export(reader: csv.DictReader[str]) -> Iterator[ProviderCharge]:
    for number, raw in enumerate(reader, start=2):
        row = _lower_keys(raw)
        status = row.get("status", "paid").strip().lower()
        if status in {"failed", "canceled"} or row.get("captured", "true").strip().lower() == "false":
            continue
        currency = row["currency"].strip().upper()
        try:
            yield ProviderCharge(
                external_id=row["id"].strip(),
                amount_minor=to_minor(row["amount"], currency),
                currency=currency,
                refunded_minor=to_minor(row.get("amount refunded", "0"), currency),
                customer_ref=row.get("customer id", "").strip() or None,
                invoice_ref=row.get("invoice id", "").strip() or None,
            )
        except (CsvFormatError, ValueError) as error:
            raise CsvFormatError(f"line {number}: {error}") from error


def _balance_export(reader: csv.DictReader[str]) -> Iterator[ProviderCharge]:
    amounts: dict[str, int] = {}
    currencies: dict[str, str] = {}
    refunds: dict[str, int] = {}
    for number, raw in enumerate(reader, start=2):
        row = _lower_keys(raw)
        kind = row["type"].strip().lower()
        currency = row["currency"].strip().upper()
        try:
            amount = to_minor(row["amount"], currency)
        except (CsvFormatError, ValueError) as error:
            raise CsvFormatError(f"line {number}: {error}") from error
        source = row["source"].strip()
        if kind in {"charge", "payment"}:
            amounts[source] = amount
            currencies[source] = currency
        elif kind in {"refund", "payment_refund"}:
            charge_id = row.get("charge id", "").strip()
            if not charge_id:
                raise CsvFormatError(f"line {number}: a refund row needs its charge id (charge_id column)")
            refunds[charge_id] = refunds.get(charge_id, 0) + abs(amount)
            currencies.setdefault(charge_id, currency)
    for external_id, currency in currencies.items():
        yield ProviderCharge(external_id, amounts.get(external_id, 0), currency, refunds.get(external_id, 0))
