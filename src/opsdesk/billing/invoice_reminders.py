"""Reminders for invoices on net terms: before the due date and after it, each sent once.

Pure: given an invoice's due instant, the stages already sent and now, which stage (if any) is
due. Stages are named by their offset so a re-run never sends the same reminder twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# Negative: days before the due date; positive: days overdue.
REMINDER_OFFSETS_DAYS: tuple[int, ...] = (-7, -1, 1, 7, 14)


def stage_name(offset_days: int) -> str:
    return f"due{offset_days:+d}d"


def due_reminder(due_at: datetime, sent: list[str], now: datetime) -> str | None:
    """The latest reminder stage whose time has come and that was not sent yet.

    Only the latest is sent: an invoice first looked at 10 days overdue gets the 7-day overdue
    reminder, not a burst of three.
    """
    latest: str | None = None
    for offset in REMINDER_OFFSETS_DAYS:
        if now >= due_at + timedelta(days=offset):
            latest = stage_name(offset)
    if latest is None or latest in sent:
        return None
    return latest


def is_overdue_stage(stage: str) -> bool:
    return "+" in stage
