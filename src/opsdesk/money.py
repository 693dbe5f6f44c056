"""Money: an integer amount in the currency's minor unit plus an ISO 4217 code.

Never a float. The number of minor digits per currency comes from Babel (CLDR data), so JPY has
0, USD 2, KWD 3. Arithmetic refuses to mix currencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from babel.numbers import get_currency_precision, is_currency


class CurrencyMismatchError(ValueError):
    """Two amounts in different currencies were combined."""


@lru_cache(maxsize=512)
def minor_digits(currency: str) -> int:
    """How many minor-unit digits the currency has (2 for USD, 0 for JPY, 3 for KWD)."""
    code = currency.upper()
    if not is_currency(code):
        raise ValueError(f"unknown currency code {currency!r}")
    return int(get_currency_precision(code))


def validate_currency(currency: str) -> str:
    code = currency.upper()
    minor_digits(code)
    return code


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount_minor, int) or isinstance(self.amount_minor, bool):
            raise TypeError("amount_minor must be an int")
        object.__setattr__(self, "currency", validate_currency(self.currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, amount: Decimal | str, currency: str) -> Money:
        """Round a major-unit decimal to the currency's minor unit (banker's rounding)."""
        digits = minor_digits(currency)
        quantum = Decimal(1).scaleb(-digits)
        rounded = Decimal(amount).quantize(quantum, rounding=ROUND_HALF_EVEN)
        return cls(int(rounded.scaleb(digits)), currency)

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount_minor).scaleb(-minor_digits(self.currency))

    def _check(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount_minor < other.amount_minor

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.amount_minor <= other.amount_minor

    def format(self) -> str:
        """Plain display such as ``USD 12.50``."""
        return f"{self.currency} {self.to_decimal():,}"

    def as_dict(self) -> dict[str, int | str]:
        return {"amount_minor": self.amount_minor, "currency": self.currency}
