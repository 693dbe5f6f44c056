"""How values read on the pages: instants, durations, money, statuses and audit values.

Pure functions used by the view-model builders, so templates print strings and never decide how
a value looks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from opsdesk.money import Money

PRIORITY_LABELS = {"low": "Low", "normal": "Normal", "high": "High", "urgent": "Urgent"}
TIER_LABELS = {
    "enterprise": "Enterprise",
    "business": "Business",
    "self_serve": "Self-serve",
    "consumer": "Consumer",
}
FIELD_LABELS = {
    "status": "Status",
    "custom_status_id": "Custom status",
    "priority": "Priority",
    "type": "Type",
    "category": "Category",
    "assignee_id": "Assignee",
    "group_id": "Group",
    "account_id": "Account",
    "tags": "Tags",
    "subject": "Subject",
    "custom_fields": "Custom fields",
    "satisfaction_score": "Satisfaction",
    "merged_into_id": "Merged into",
    "language": "Language",
}
ACTION_LABELS = {
    "created": "created the ticket",
    "reply_added": "added a public reply",
    "note_added": "added an internal note",
    "updated": "changed",
    "rated": "rated",
    "merged_in": "merged a ticket into this one",
}


def instant(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


def iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def ago(value: datetime | None, now: datetime) -> str:
    """ "5 min ago", "3 h ago", "12 d ago": short enough for a table cell."""
    if value is None:
        return ""
    seconds = max(0, int((now - value).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3_600:
        return f"{seconds // 60} min ago"
    if seconds < 86_400:
        return f"{seconds // 3_600} h ago"
    return f"{seconds // 86_400} d ago"


def duration(seconds: int | float | None) -> str:
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 3_600:
        return f"{whole // 60} min"
    if whole < 86_400:
        return f"{whole // 3_600} h {whole % 3_600 // 60} min"
    return f"{whole // 86_400} d {whole % 86_400 // 3_600} h"


def money(amount_minor: int, currency: str) -> str:
    amount = Money(amount_minor, currency).to_decimal()
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency)
    return f"{symbol}{amount:,.2f}" if symbol else f"{currency} {amount:,.2f}"


def status_label(status: str) -> str:
    return status.replace("_", " ").capitalize()


def audit_value(field: str | None, value: Any, names: Mapping[str, Mapping[int, str]]) -> str:
    """An audit row's old or new value in words (user and group ids become names)."""
    if value is None:
        return "—"
    if field is not None and field in names and isinstance(value, int):
        return names[field].get(value, f"#{value}")
    if field == "status" and isinstance(value, str):
        return status_label(value)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {item}" for key, item in value.items()) or "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def file_size(size_bytes: int) -> str:
    """ "812 bytes", "14 KB", "2.3 MB"."""
    if size_bytes < 1024:
        return f"{size_bytes} bytes"
    if size_bytes < 1024 * 1024:
        return f"{size_bytes / 1024:.0f} KB"
    return f"{size_bytes / (1024 * 1024):.1f} MB"
