"""SLA events, past tense."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SlaBreached:
    """A ticket's target ran out before it was met; published once per target."""

    ticket_id: int
    target_id: int
    metric: str
    policy_name: str
    due_at: datetime
