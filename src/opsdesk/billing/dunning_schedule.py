"""The dunning schedule: when a failed invoice payment is retried and what happens after.

After the first failure the subscription turns ``past_due`` and the customer is emailed. Payment
is retried :data:`RETRY_AFTER_DAYS` days after the first failure (Stripe's default of four
attempts over about three weeks); after the last failed retry the subscription turns ``unpaid``,
and :data:`CANCEL_AFTER_UNPAID_DAYS` days later it is canceled. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

RETRY_AFTER_DAYS: tuple[int, ...] = (3, 5, 7)
CANCEL_AFTER_UNPAID_DAYS = 14


@dataclass(frozen=True, slots=True)
class DunningStep:
    """What to do after a failed attempt: retry at ``retry_at`` or move to ``unpaid``."""

    next_status: str
    retry_at: datetime | None
    email_template: str


def after_failed_attempt(attempt_number: int, first_failed_at: datetime) -> DunningStep:
    """The step after failed attempt ``attempt_number`` (1 = the original charge)."""
    if attempt_number < 1:
        raise ValueError("attempt numbers start at 1")
    retry_index = attempt_number - 1
    if retry_index < len(RETRY_AFTER_DAYS):
        offset = sum(RETRY_AFTER_DAYS[: retry_index + 1])
        template = "payment_failed" if attempt_number == 1 else "payment_retry_failed"
        return DunningStep("past_due", first_failed_at + timedelta(days=offset), template)
    return DunningStep("unpaid", None, "subscription_unpaid")


def cancel_due_at(unpaid_since: datetime) -> datetime:
    return unpaid_since + timedelta(days=CANCEL_AFTER_UNPAID_DAYS)


def total_attempts() -> int:
    return 1 + len(RETRY_AFTER_DAYS)
