"""Tables of insights: experiments and their per-ticket assignments, report subscriptions, and
the indexes the metric layer needs on the ticket tables.

The indexes are declared here, beside the queries that need them, so the ticket domain's model
stays about tickets: each metric places a ticket in a period by one instant (first reply, first
solve, rating), and a period's range scan needs that instant indexed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opsdesk import clock
from opsdesk.auth.models import User
from opsdesk.db import Base, BigId
from opsdesk.sla.models import SlaTarget
from opsdesk.tickets.models import Message, Ticket

Index("ix_tickets_first_reply_at", Ticket.first_reply_at)
Index("ix_tickets_first_solved_at", Ticket.first_solved_at)
Index("ix_tickets_satisfaction_at", Ticket.satisfaction_at)
Index("ix_tickets_follow_up_of_id", Ticket.follow_up_of_id)
Index("ix_messages_created_at", Message.created_at)
# SLA attainment places a target in a period by when it settled: breached, else achieved. (The
# breached_at index, ix_sla_targets_any_breached_at, is the SLA model's: its views use it too.)
Index("ix_sla_targets_achieved_at", SlaTarget.achieved_at)


class Experiment(Base):
    """An A/B test of a routing rule, macro or SLA window; the first arm is the control."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(20))
    subject_ref: Mapped[str] = mapped_column(String(120), default="")
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    metric: Mapped[str] = mapped_column(String(60))
    arms: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    baseline: Mapped[float] = mapped_column(Float)
    baseline_spread: Mapped[float | None] = mapped_column(Float)
    minimum_effect: Mapped[float] = mapped_column(Float)
    alpha: Mapped[float] = mapped_column(Float, default=0.05)
    power: Mapped[float] = mapped_column(Float, default=0.8)
    required_per_arm: Mapped[int] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey(User.id, ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    started_at: Mapped[datetime | None] = mapped_column()
    stopped_at: Mapped[datetime | None] = mapped_column()


class ExperimentAssignment(Base):
    """The arm one ticket drew in one experiment; drawn once, never changed."""

    __tablename__ = "experiment_assignments"
    __table_args__ = (
        UniqueConstraint("experiment_id", "ticket_id"),
        Index("ix_experiment_assignments_experiment_arm", "experiment_id", "arm"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    arm: Mapped[str] = mapped_column(String(40))
    assigned_at: Mapped[datetime] = mapped_column(default=clock.now)


class ReportSubscription(Base):
    """A leader who receives the weekly ops review by email, in a chosen format."""

    __tablename__ = "report_subscriptions"
    __table_args__ = (UniqueConstraint("user_id", "report"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey(User.id, ondelete="CASCADE"))
    report: Mapped[str] = mapped_column(String(40), default="weekly")
    format: Mapped[str] = mapped_column(String(10), default="pdf")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class DailyRollup(Base):
    """One day of one metric for one key of one dimension.

    ``dimension`` is ``all`` for the whole population (``key`` null) or a dimension name of the
    metric layer (``key`` its value as text, null for "none"). ``units`` counts the units and
    ``value_sum`` adds their exact values (the numerator of a rate), so counts, rates and means
    from rollups equal the raw answers exactly. ``histogram`` (durations and scores only) is
    ``bin:units`` pairs joined by commas: the log bins of :mod:`opsdesk.insights.histogram` for
    durations, the rating itself for scores; percentiles come from it. ``day``/``week``/``month``
    are the buckets of the anchor instant as :func:`opsdesk.insights.sqltime.time_bucket`
    writes them.
    """

    __tablename__ = "insights_daily_rollups"
    __table_args__ = (Index("ix_insights_daily_rollups_metric_dimension_day", "metric", "dimension", "day"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    metric: Mapped[str] = mapped_column(String(60))
    dimension: Mapped[str] = mapped_column(String(20))
    key: Mapped[str | None] = mapped_column(String(200))
    day: Mapped[str] = mapped_column(String(16))
    week: Mapped[str] = mapped_column(String(16))
    month: Mapped[str] = mapped_column(String(16))
    units: Mapped[int] = mapped_column(Integer)
    value_sum: Mapped[float] = mapped_column(Float)
    histogram: Mapped[str | None] = mapped_column(Text)


class RollupState(Base):
    """How far the rollups reach: every UTC day before ``built_through`` is rolled up, as the
    raw tables stood at ``refreshed_at`` (tickets changed since are re-rolled by the next run)."""

    __tablename__ = "insights_rollup_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    built_through: Mapped[str] = mapped_column(String(16))
    refreshed_at: Mapped[datetime] = mapped_column()
    rebuilt_at: Mapped[datetime] = mapped_column()
    rows: Mapped[int] = mapped_column(Integer, default=0)


class CostSetting(Base):
    """Loaded costs for cost to serve: an hourly cost of in-house staff (``kind=in_house``, no
    vendor), one per contractor vendor (``kind=vendor``, ``vendor`` as on users.vendor), and the
    monthly tooling cost (``kind=tooling``). Money as minor units plus currency; one currency
    for all settings (the service refuses a second)."""

    __tablename__ = "insights_cost_settings"
    __table_args__ = (UniqueConstraint("kind", "vendor"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    vendor: Mapped[str | None] = mapped_column(String(120))
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey(User.id, ondelete="SET NULL"))
