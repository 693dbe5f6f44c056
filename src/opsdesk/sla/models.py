"""Tables of SLA: business calendars, ordered policies and per-ticket targets.

A target (one row per ticket, metric and cycle) snapshots what was in force when it started: the
policy, its target duration, business or calendar time, the calendar, and whether on-hold pauses
it. Editing a policy later changes new targets only; past figures stay as they were measured.

Bookkeeping of a target: ``elapsed_seconds`` is the (business or calendar) time used before the
current run; while ``active`` the clock runs since ``running_since`` and ``due_at`` is when the
budget runs out; while ``paused`` ``due_at`` is null. Active targets are indexed by ``due_at``
(a partial index, ``WHERE status = 'active'``) so the sweep and the "breaching soon" view find
due targets without loading open tickets; breached targets by ``breached_at`` (set only when a
target breaches, which it then stays).

``kind`` is ``policy`` for targets a policy started, ``deadline`` for a fixed deadline started by
another domain (:func:`opsdesk.sla.deadlines.start_deadline_target`, e.g. a payment dispute's
evidence due date): its ``due_at`` is fixed (never paused, never re-timed by a policy or calendar
change), its ``reason`` is shown in place of a policy name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint, literal, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from opsdesk import clock
from opsdesk.db import Base, BigId


class BusinessCalendarRow(Base):
    __tablename__ = "business_calendars"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    holiday_country: Mapped[str | None] = mapped_column(String(8))
    holiday_subdivision: Mapped[str | None] = mapped_column(String(16))
    closed_dates: Mapped[list[str]] = mapped_column(default=list)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class SlaPolicy(Base):
    """Chosen for a ticket by the first active policy (lowest ``position``) whose conditions match.

    ``conditions``: ``{"priority": ["urgent"], "tier": ["enterprise"], "channel": [...],
    "group_id": [...], "category": [...]}`` (all given fields must match; empty matches every
    ticket). ``targets``: ``{"first_reply": {"minutes": 60, "business_hours": true}, ...}``.
    """

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    conditions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    targets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("business_calendars.id", ondelete="SET NULL"))
    pause_on_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)

    calendar: Mapped[BusinessCalendarRow | None] = relationship(lazy="joined")


ACTIVE_DUE_INDEX = "ix_sla_targets_active_due_at"
BREACHED_AT_INDEX = "ix_sla_targets_any_breached_at"
ACTIVE_ONLY = text("status = 'active'")
# Compare with these (rendered into the SQL as constants, never bound) where a query should use
# the partial indexes: a PostgreSQL generic plan cannot prove ``status = $1`` implies the predicate.
ACTIVE_STATUS = literal("active", literal_execute=True)
BREACHED_STATUS = literal("breached", literal_execute=True)


class SlaTarget(Base):
    __tablename__ = "sla_targets"
    __table_args__ = (
        UniqueConstraint("ticket_id", "metric", "cycle"),
        # Active targets by due time (the sweep, "breaching soon"); breached ones by breach time.
        Index(ACTIVE_DUE_INDEX, "due_at", sqlite_where=ACTIVE_ONLY, postgresql_where=ACTIVE_ONLY),
        # Not partial: SLA attainment ranges over it for every status (insights). Only breached
        # targets have a breached_at, so the breached view reads it with ``IS NOT NULL``.
        Index(BREACHED_AT_INDEX, "breached_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Found by ticket through the unique (ticket_id, metric, cycle) index: no index of its own.
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(20))
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id", ondelete="SET NULL"))
    policy_name: Mapped[str] = mapped_column(String(120))
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("business_calendars.id", ondelete="SET NULL"))
    business_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    pause_on_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    target_seconds: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="active")
    kind: Mapped[str] = mapped_column(String(10), default="policy", server_default="policy")
    reason: Mapped[str | None] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column()
    running_since: Mapped[datetime | None] = mapped_column()
    elapsed_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    due_at: Mapped[datetime | None] = mapped_column()
    achieved_at: Mapped[datetime | None] = mapped_column()
    breached_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
