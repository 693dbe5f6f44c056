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
from opsdesk.tickets.models import Message, Ticket

Index("ix_tickets_first_reply_at", Ticket.first_reply_at)
Index("ix_tickets_first_solved_at", Ticket.first_solved_at)
Index("ix_tickets_satisfaction_at", Ticket.satisfaction_at)
Index("ix_tickets_follow_up_of_id", Ticket.follow_up_of_id)
Index("ix_messages_created_at", Message.created_at)


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
