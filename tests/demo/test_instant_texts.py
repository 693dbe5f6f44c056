"""InstantFormat.texts formats a column of instants as the per-value call does, NULL where absent."""

from __future__ import annotations

from datetime import UTC, datetime

from opsdesk.demo.bulk import InstantFormat, epoch_of


def test_texts_equal_the_per_value_format_and_leave_absent_positions_null() -> None:
    first = epoch_of(datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC))
    # Across a year end and 40 days, with one instant repeated.
    epochs = [first, first + 1, first + 86_400 * 40 + 7, first]
    for dialect in ("sqlite", "postgresql"):
        instant = InstantFormat(dialect)
        texts = instant.texts(epochs, absent=[2])
        assert texts == [instant(epochs[0]), instant(epochs[1]), None, instant(epochs[3])]
    assert InstantFormat("sqlite").texts(epochs[:2]) == [
        "2025-12-31 23:59:59.000000",
        "2026-01-01 00:00:00.000000",
    ]
    assert InstantFormat("postgresql").texts([]) == []
