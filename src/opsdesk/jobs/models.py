"""Stored schedule state: when each piece of scheduled work is next due.

One row per schedule name. A worker takes the row lock (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the writer lock on SQLite) before enqueueing a period, so several workers never
enqueue the same period; the period's idempotency key makes that doubly sure.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from opsdesk.db import Base


class JobSchedule(Base):
    __tablename__ = "job_schedules"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    every_seconds: Mapped[int] = mapped_column(Integer)
    next_run_at: Mapped[datetime] = mapped_column()
    last_enqueued_at: Mapped[datetime | None] = mapped_column()
