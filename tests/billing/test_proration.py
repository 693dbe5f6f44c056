"""Proration computed the way Stripe does: time-weighted by the second, each line rounded."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsdesk.billing.proration import (
    PricedQuantity,
    ProrationInputError,
    divide_rounded,
    prorate,
    prorate_seconds,
    unused_amount_minor,
)


def test_upgrade_halfway_through_a_thirty_day_month() -> None:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    end = datetime(2026, 5, 1, tzinfo=UTC)
    at = datetime(2026, 4, 16, tzinfo=UTC)
    result = prorate(PricedQuantity(2_000, 10), PricedQuantity(5_000, 12), start, end, at)
    assert result.credit.amount_minor == -10_000  # half of 10 x 20.00
    assert result.charge.amount_minor == 30_000  # half of 12 x 50.00
    assert result.net_amount_minor == 20_000
    assert result.remaining_seconds == 15 * 86_400


def test_each_line_is_rounded_on_its_own_half_away_from_zero() -> None:
    # One third of the period remains: 1000/3 = 333.33 -> 333; 2000/3 = 666.67 -> 667.
    result = prorate_seconds(PricedQuantity(1_000, 1), PricedQuantity(2_000, 1), 0, 3, 2)
    assert (result.credit.amount_minor, result.charge.amount_minor) == (-333, 667)
    assert divide_rounded(5, 2) == 3
    assert divide_rounded(-5, 2) == -3


def test_flat_prices_ignore_seats_and_zero_decimal_currencies_stay_whole() -> None:
    result = prorate_seconds(
        PricedQuantity(9_900, 7, per_seat=False), PricedQuantity(9_900, 9, per_seat=False), 0, 100, 50
    )
    assert result.net_amount_minor == 0
    assert unused_amount_minor(PricedQuantity(3_000, 1), 0, 30, 20) == 1_000


def test_changes_outside_the_period_are_refused() -> None:
    with pytest.raises(ProrationInputError):
        prorate_seconds(PricedQuantity(1, 1), PricedQuantity(2, 1), 100, 200, 200)
    with pytest.raises(ProrationInputError):
        prorate_seconds(PricedQuantity(1, 1), PricedQuantity(2, 1), 100, 200, 99)
    with pytest.raises(ProrationInputError):
        prorate_seconds(PricedQuantity(-1, 1), PricedQuantity(2, 1), 100, 200, 150)


@given(
    old_unit=st.integers(0, 10_000_000),
    new_unit=st.integers(0, 10_000_000),
    old_quantity=st.integers(0, 5_000),
    new_quantity=st.integers(0, 5_000),
    period=st.integers(1, 400 * 86_400),
    data=st.data(),
)
def test_credit_plus_charge_is_the_price_difference_over_the_remaining_time(
    old_unit: int, new_unit: int, old_quantity: int, new_quantity: int, period: int, data: st.DataObject
) -> None:
    start = 1_767_225_600
    at = start + data.draw(st.integers(0, period - 1))
    old, new = PricedQuantity(old_unit, old_quantity), PricedQuantity(new_unit, new_quantity)
    result = prorate_seconds(old, new, start, start + period, at)
    exact = Fraction((new.amount_minor - old.amount_minor) * (start + period - at), period)
    # Each of the two lines is rounded once, so the sum is within one minor unit of exact.
    assert abs(result.net_amount_minor - exact) <= 1
    assert result.credit.amount_minor <= 0 <= result.charge.amount_minor
    assert -result.credit.amount_minor <= old.amount_minor
    assert result.charge.amount_minor <= new.amount_minor
