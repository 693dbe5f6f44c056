"""Entities pulled from a ticket's text: invoice and order numbers, amounts with currency, email
addresses and plan names.

Pure and deterministic: the same text always gives the same entities, in order of appearance,
without duplicates. Amounts are kept as integer minor units with their ISO currency (never floats).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

_INVOICE = re.compile(r"\b(?:invoice|inv)\s*(?:no\.?|number|#|:)?\s*#?\s*([A-Z0-9][A-Z0-9-]{2,30}\d)\b", re.I)
_INVOICE_CODE = re.compile(r"\b(in_[A-Za-z0-9]{6,40}|INV-\d{3,12})\b")
_ORDER = re.compile(r"\border\s*(?:no\.?|number|#|:)?\s*#?\s*([A-Z0-9][A-Z0-9-]{2,30}\d)\b", re.I)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,24}\b")
_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_CODES = ("USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "SEK", "NOK", "DKK", "INR", "BRL", "MXN")
_NUMBER = r"(\d{1,3}(?:[,\s]\d{3})+(?:\.\d{1,2})?|\d+(?:[.,]\d{1,2})?)"
_AMOUNT_SYMBOL = re.compile(r"([$€£¥])\s?" + _NUMBER)
_AMOUNT_CODE_AFTER = re.compile(_NUMBER + r"\s?(" + "|".join(_CODES) + r")\b", re.I)
_AMOUNT_CODE_BEFORE = re.compile(r"\b(" + "|".join(_CODES) + r")\s?" + _NUMBER, re.I)
_ZERO_DECIMAL = frozenset({"JPY"})
DEFAULT_PLANS: tuple[str, ...] = (
    "free",
    "starter",
    "basic",
    "pro",
    "professional",
    "business",
    "team",
    "enterprise",
)
_PLAN = re.compile(r"\b(" + "|".join(DEFAULT_PLANS) + r")\s+(?:plan|tier|subscription)\b", re.I)


@dataclass(frozen=True, slots=True)
class Entity:
    kind: str  # invoice_number, order_number, amount, email, plan
    text: str  # as written
    value: str  # normalized (amounts: "<minor units> <CURRENCY>")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _minor_units(number: str, currency: str) -> int | None:
    cleaned = number.replace(" ", "")
    if "," in cleaned and "." not in cleaned and len(cleaned.rsplit(",", 1)[1]) == 2:
        cleaned = cleaned.replace(",", ".")  # "12,50" written with a decimal comma
    cleaned = cleaned.replace(",", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        return None
    exponent = 0 if currency in _ZERO_DECIMAL else 2
    return int(amount * (10**exponent))


def extract_entities(text: str, plans: tuple[str, ...] = DEFAULT_PLANS) -> list[Entity]:
    """Every entity found in ``text``, in order of appearance, each once."""
    found: list[tuple[int, Entity]] = []
    for match in _INVOICE.finditer(text):
        found.append((match.start(1), Entity("invoice_number", match.group(1), match.group(1).upper())))
    for match in _INVOICE_CODE.finditer(text):
        found.append((match.start(1), Entity("invoice_number", match.group(1), match.group(1).upper())))
    for match in _ORDER.finditer(text):
        found.append((match.start(1), Entity("order_number", match.group(1), match.group(1).upper())))
    emails = list(_EMAIL.finditer(text))
    for match in emails:
        found.append((match.start(), Entity("email", match.group(0), match.group(0).lower())))
    spans: list[tuple[int, int]] = []
    for pattern, symbol_first in (
        (_AMOUNT_SYMBOL, True),
        (_AMOUNT_CODE_BEFORE, True),
        (_AMOUNT_CODE_AFTER, False),
    ):
        for match in pattern.finditer(text):
            if any(start <= match.start() < end for start, end in spans):
                continue
            marker, number = (
                (match.group(1), match.group(2)) if symbol_first else (match.group(2), match.group(1))
            )
            currency = _SYMBOLS.get(marker, marker.upper())
            minor = _minor_units(number, currency)
            if minor is None:
                continue
            spans.append((match.start(), match.end()))
            found.append((match.start(), Entity("amount", match.group(0), f"{minor} {currency}")))
    plan_pattern = (
        _PLAN
        if plans == DEFAULT_PLANS
        else re.compile(
            r"\b(" + "|".join(re.escape(plan) for plan in plans) + r")\s+(?:plan|tier|subscription)\b", re.I
        )
    )
    for match in plan_pattern.finditer(text):
        found.append((match.start(), Entity("plan", match.group(0), match.group(1).lower())))
    seen: set[tuple[str, str]] = set()
    ordered: list[Entity] = []
    for _position, entity in sorted(found, key=lambda item: item[0]):
        key = (entity.kind, entity.value)
        if key in seen:
            continue
        # an invoice number inside an email address is the address, not an invoice
        if entity.kind != "email" and any(entity.text in email.group(0) for email in emails):
            continue
        seen.add(key)
        ordered.append(entity)
    return ordered
