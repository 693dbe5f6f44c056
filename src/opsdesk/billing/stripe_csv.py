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


def _key(name: str) -> str:
    return name.strip().lower().replace("_", " ")


def read_export(lines: Iterable[str]) -> Iterator[ProviderCharge]:
    """Charges from either export; the format is known from the header row."""
    remaining = iter(lines)  # one pass: the header is read once, whichever reader follows
    reader = csv.reader(remaining)
    header = [_key(name) for name in next(reader, [])]
    names = set(header)
    if {"id", "amount", "currency"} <= names and ("amount refunded" in names or "status" in names):
        yield from _charges_export(reader, header)
    elif {"source", "type", "amount", "currency"} <= names:
        yield from _balance_export(csv.DictReader(remaining, fieldnames=header))
    else:
        raise CsvFormatError(
            "expected a Stripe charges export (id, Amount, Amount Refunded, Currency) or a balance "
            "export (Source, Type, Amount, Currency)"
        )


def _charges_export(reader: Iterator[list[str]], header: list[str]) -> Iterator[ProviderCharge]:
    # Column positions once, then plain list indexing per row (a million rows per run).
    position = {name: index for index, name in enumerate(header)}
    id_at, amount_at, currency_at = position["id"], position["amount"], position["currency"]
    refunded_at = position.get("amount refunded")
    status_at = position.get("status")
    captured_at = position.get("captured")
    customer_at = position.get("customer id")
    invoice_at = position.get("invoice id")
    width = len(header)
    for number, row in enumerate(reader, start=2):
        if len(row) < width:
            if not row:
                continue
            raise CsvFormatError(f"line {number}: expected {width} columns, found {len(row)}")
        if status_at is not None and row[status_at].strip().lower() in {"failed", "canceled"}:
            continue
        if captured_at is not None and row[captured_at].strip().lower() == "false":
            continue
        currency = row[currency_at].strip().upper()
        try:
            yield ProviderCharge(
                row[id_at].strip(),
                to_minor(row[amount_at], currency),
                currency,
                to_minor(row[refunded_at], currency) if refunded_at is not None else 0,
                (row[customer_at].strip() or None) if customer_at is not None else None,
                (row[invoice_at].strip() or None) if invoice_at is not None else None,
            )
        except (CsvFormatError, ValueError) as error:
            raise CsvFormatError(f"line {number}: {error}") from error


def _balance_export(reader: csv.DictReader[str]) -> Iterator[ProviderCharge]:
    amounts: dict[str, int] = {}
    currencies: dict[str, str] = {}
    refunds: dict[str, int] = {}
    for number, raw in enumerate(reader, start=2):
        row = {key: value or "" for key, value in raw.items() if key is not None}
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
