"""Proration of a mid-period plan or seat change, computed the way Stripe computes it.

For a period ``[start, end)`` and a change at instant ``at`` (all whole seconds):
- the unused time on the old price is credited: ``-(old amount x (end - at) / (end - start))``;
- the remaining time on the new price is charged: ``new amount x (end - at) / (end - start)``;
where an amount is the unit price times the quantity (seats) for per-seat prices and the unit
price for flat ones. Each line is rounded on its own to the currency's minor unit (half away
from zero), so ``credit + charge`` differs from the exact price difference over the remaining
time by at most one minor unit. Integer arithmetic only: no floats, no Decimal in the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class ProrationInputError(ValueError):
    """The change instant is outside the period, or an amount or quantity is negative."""


@dataclass(frozen=True, slots=True)
class PricedQuantity:
    """A price and the quantity it is billed for (seats; 1 for flat prices)."""

    unit_amount_minor: int
    quantity: int
    per_seat: bool = True

    @property
    def amount_minor(self) -> int:
        return self.unit_amount_minor * (self.quantity if self.per_seat else 1)


class ProrationLine(NamedTuple):
    # NamedTuples, not frozen dataclasses: a preview builds three of these, and tuple creation is
    # several times cheaper (previews must run at tens of thousands per second).
    description: str
    amount_minor: int
    quantity: int
    unit_amount_minor: int
    period_start_seconds: int
    period_end_seconds: int


class Proration(NamedTuple):
    credit: ProrationLine
    charge: ProrationLine
    remaining_seconds: int
    period_seconds: int

    @property
    def net_amount_minor(self) -> int:
        return self.credit.amount_minor + self.charge.amount_minor


def divide_rounded(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, halves away from zero."""
    if denominator <= 0:
        raise ProrationInputError("the period must be longer than zero seconds")
    magnitude, remainder = divmod(abs(numerator), denominator)
    if remainder * 2 >= denominator:
        magnitude += 1
    return magnitude if numerator >= 0 else -magnitude


def prorate_seconds(
    old: PricedQuantity, new: PricedQuantity, period_start: int, period_end: int, at: int
) -> Proration:
    """The credit and charge lines for a change at ``at`` (epoch seconds) inside the period."""
    if not period_start <= at < period_end:
        raise ProrationInputError("the change must fall inside the current period")
    if old.unit_amount_minor < 0 or new.unit_amount_minor < 0 or old.quantity < 0 or new.quantity < 0:
        raise ProrationInputError("amounts and quantities must not be negative")
    period = period_end - period_start
    remaining = period_end - at
    credit_amount = -divide_rounded(old.amount_minor * remaining, period)
    charge_amount = divide_rounded(new.amount_minor * remaining, period)
    return Proration(
        credit=ProrationLine(
            "Unused time", credit_amount, old.quantity, old.unit_amount_minor, at, period_end
        ),
        charge=ProrationLine(
            "Remaining time", charge_amount, new.quantity, new.unit_amount_minor, at, period_end
        ),
        remaining_seconds=remaining,
        period_seconds=period,
    )


def prorate(
    old: PricedQuantity, new: PricedQuantity, period_start: datetime, period_end: datetime, at: datetime
) -> Proration:
    """:func:`prorate_seconds` for aware datetimes, truncated to whole seconds as Stripe does."""
    return prorate_seconds(
        old, new, int(period_start.timestamp()), int(period_end.timestamp()), int(at.timestamp())
    )


def unused_amount_minor(current: PricedQuantity, period_start: int, period_end: int, at: int) -> int:
    """What the unused rest of the period is worth (for a cancellation's refund or credit)."""
    if not period_start <= at < period_end:
        raise ProrationInputError("the instant must fall inside the current period")
    return divide_rounded(current.amount_minor * (period_end - at), period_end - period_start)
