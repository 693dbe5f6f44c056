"""Billing periods the way Stripe counts them: from the subscription's billing cycle anchor,
clamped to the month's last day (anchor Jan 31: Feb 28/29, then Mar 31, not Mar 28). Pure."""

from __future__ import annotations

import calendar
from datetime import datetime


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_interval(moment: datetime, interval: str, count: int = 1) -> datetime:
    if interval == "month":
        return add_months(moment, count)
    if interval == "year":
        return add_months(moment, 12 * count)
    raise ValueError(f"unknown interval {interval!r}")


def next_period_end(anchor: datetime, period_start: datetime, interval: str) -> datetime:
    """The end of the period that starts at ``period_start``: the first anchor + n intervals after
    it. Counting from the anchor (not from the last period) keeps the anchor's day of the month
    after a short month, as Stripe does."""
    step = 12 if interval == "year" else 1
    if interval not in ("month", "year"):
        raise ValueError(f"unknown interval {interval!r}")
    months = (period_start.year - anchor.year) * 12 + period_start.month - anchor.month
    count = max(months - months % step, 0)
    candidate = add_months(anchor, count)
    while candidate <= period_start:
        count += step
        candidate = add_months(anchor, count)
    return candidate
