"""Tax on invoice lines, computed the way Stripe Tax computes it: per line, rounded to the
currency's minor unit (half away from zero), from the rate in force for the customer's tax
location on the day. Pure: no I/O.

- An **exclusive** rate adds tax on top: ``tax = round(amount x rate)``; the line keeps its amount.
- An **inclusive** rate is inside the price: ``net = round(amount / (1 + rate))`` and
  ``tax = amount - net``; the line is stored at its net so that every invoice keeps
  ``total = subtotal + tax`` and the customer still pays the price.
- A tax-exempt customer, or an EU business buying cross-border with a VAT id (reverse charge: the
  buyer accounts for the VAT), pays no tax; the invoice says why.
Rates are in basis points (2000 = 20 %). Amounts are integer minor units, so rounding to an
integer is rounding to the currency's minor unit (cents, or whole yen for JPY).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from opsdesk.billing.proration import divide_rounded

BASIS = 10_000

EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    ]
)


REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient (Article 196, Directive 2006/112/EC)"
)


class TaxExempt(StrEnum):
    """Stripe's ``customer.tax_exempt`` values."""

    NONE = "none"
    EXEMPT = "exempt"
    REVERSE = "reverse"


class Treatment(StrEnum):
    TAXED = "taxed"
    EXEMPT = "exempt"
    REVERSE_CHARGE = "reverse_charge"
    NO_RATE = "no_rate"


@dataclass(frozen=True, slots=True)
class Rate:
    id: int
    country: str
    region: str | None
    basis_points: int
    inclusive: bool
    name: str
    valid_from: date
    valid_until: date | None = None

    def in_force(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_until is None or on < self.valid_until)

    @property
    def label(self) -> str:
        percent = f"{self.basis_points / 100:g}"
        return f"{self.name} {percent}%{' incl.' if self.inclusive else ''}"


@dataclass(frozen=True, slots=True)
class TaxLocation:
    country: str | None
    region: str | None = None
    exempt: str = TaxExempt.NONE.value
    vat_id: str | None = None


@dataclass(frozen=True, slots=True)
class TaxedLine:
    amount: int  # what the line is stored at (net of an inclusive rate)
    tax: int


def treatment(location: TaxLocation, seller_country: str | None) -> Treatment:
    if location.exempt == TaxExempt.EXEMPT:
        return Treatment.EXEMPT
    if location.exempt == TaxExempt.REVERSE:
        return Treatment.REVERSE_CHARGE
    if (
        location.vat_id
        and location.country in EU_COUNTRIES
        and seller_country in EU_COUNTRIES
        and location.country != seller_country
    ):
        return Treatment.REVERSE_CHARGE
    if location.country is None:
        return Treatment.NO_RATE
    return Treatment.TAXED


def choose_rate(rates: Iterable[Rate], location: TaxLocation, on: date) -> Rate | None:
    """The rate in force for the location: the region's own rate before the country's."""
    country_rate: Rate | None = None
    for rate in rates:
        if rate.country != location.country or not rate.in_force(on):
            continue
        if rate.region is not None and rate.region == location.region:
            return rate
        if rate.region is None and country_rate is None:
            country_rate = rate
    return country_rate


def tax_line(amount: int, rate: Rate | None) -> TaxedLine:
    """One line's tax, rounded on its own (credits get negative tax)."""
    if rate is None or rate.basis_points == 0:
        return TaxedLine(amount, 0)
    if rate.inclusive:
        net = divide_rounded(amount * BASIS, BASIS + rate.basis_points)
        return TaxedLine(net, amount - net)
    return TaxedLine(amount, divide_rounded(amount * rate.basis_points, BASIS))


def tax_lines(amounts: Sequence[int], rate: Rate | None) -> list[TaxedLine]:
    return [tax_line(amount, rate) for amount in amounts]


def note(kind: Treatment, rate: Rate | None) -> str | None:
    """What the invoice says about its tax."""
    if kind is Treatment.REVERSE_CHARGE:
        return REVERSE_CHARGE_NOTE
    if kind is Treatment.EXEMPT:
        return "Tax exempt customer"
    if rate is not None:
        return rate.label
    return None
