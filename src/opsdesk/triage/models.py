"""Tables of triage: the category taxonomy, cold-start keyword rules, versioned classifier models,
the prediction stored for every ticket, routing rules, per-group assignment settings and the
triage settings (one row).

Invariants: at most one model version is active (``is_active``), and versions only grow; a
ticket has at most one prediction (its latest classification); routing rules are saved as a whole
set, validated first, in ``position`` order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from opsdesk import clock
from opsdesk.db import Base, BigId, JSONType


class TriageCategory(Base):
    """A category of the taxonomy; ``path`` is ``parent/child`` for sub-categories."""

    __tablename__ = "triage_categories"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    path: Mapped[str] = mapped_column(String(120), unique=True)
    label: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    @property
    def parent_path(self) -> str | None:
        return self.path.rsplit("/", 1)[0] if "/" in self.path else None


class KeywordRuleRow(Base):
    """A cold-start rule: a keyword phrase or regular expression that votes for a category."""

    __tablename__ = "triage_keyword_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    category: Mapped[str] = mapped_column(String(120), index=True)
    pattern: Mapped[str] = mapped_column(String(500))
    is_regex: Mapped[bool] = mapped_column(Boolean, default=False)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class TriageModel(Base):
    """One trained classifier version with its held-out figures and hand-off thresholds."""

    __tablename__ = "triage_models"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    n_train: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float] = mapped_column(Float)
    macro_f1: Mapped[float] = mapped_column(Float)
    baseline_accuracy: Mapped[float] = mapped_column(Float, default=0.0)
    target_precision: Mapped[float] = mapped_column(Float)
    train_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    thresholds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notes: Mapped[str] = mapped_column(Text, default="")
    trained_by: Mapped[str] = mapped_column(String(200), default="")
    trained_at: Mapped[datetime] = mapped_column(default=clock.now)
    activated_at: Mapped[datetime | None] = mapped_column()


class TriagePrediction(Base):
    """What triage concluded about a ticket and why; corrected when a person changes the category."""

    __tablename__ = "triage_predictions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    model_version: Mapped[int | None] = mapped_column(Integer, index=True)
    source: Mapped[str] = mapped_column(String(20))
    category: Mapped[str | None] = mapped_column(String(120))
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    threshold: Mapped[float] = mapped_column(Float, default=1.0)
    top_words: Mapped[Any] = mapped_column(JSONType, default=list)
    sentiment: Mapped[str] = mapped_column(String(10))
    language: Mapped[str | None] = mapped_column(String(16))
    entities: Mapped[Any] = mapped_column(JSONType, default=list)
    suggested_priority: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(10), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    corrected_category: Mapped[str | None] = mapped_column(String(120))
    corrected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    corrected_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)


class RoutingRule(Base):
    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(120))
    match: Mapped[str] = mapped_column(String(3), default="all")
    conditions: Mapped[Any] = mapped_column(JSONType, default=list)
    actions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class GroupAssignment(Base):
    """How a group hands its tickets to its agents."""

    __tablename__ = "group_assignment_settings"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(20), default="manual")
    senior_level: Mapped[int] = mapped_column(Integer, default=2)
    required_skills: Mapped[list[str]] = mapped_column(default=list)
    last_assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class TriageSettings(Base):
    """The team's triage policy (one row, id 1)."""

    __tablename__ = "triage_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_precision: Mapped[float] = mapped_column(Float, default=0.95)
    needs_triage_group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id", ondelete="SET NULL"))
    auto_assign: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
