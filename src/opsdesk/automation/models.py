"""Tables of automation: rules (event triggers and time-based automations), their firings,
macros, and the escalation matrix.

Rules hold validated JSON: ``conditions = {"all": [...], "any": [...]}`` where each condition is
``{"field", "operator", "value"}``, and ``actions = [{"type", ...}]`` (see ``conditions.py`` and
``actions.py``). Every firing is also in the ticket's audit trail under the rule's name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from opsdesk import clock
from opsdesk.db import Base, BigId, JSONType


class AutomationRule(Base):
    __tablename__ = "automation_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # trigger | automation
    events: Mapped[list[str]] = mapped_column(default=list)  # triggers: which ticket events
    conditions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    fire_count: Mapped[int] = mapped_column(Integer, default=0)
    last_fired_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class RuleFiring(Base):
    """A time-based automation fired for a ticket in one state (``marker``): it fires once per
    state, e.g. once per stretch of ``pending``, not every five minutes."""

    __tablename__ = "automation_firings"
    __table_args__ = (UniqueConstraint("rule_id", "ticket_id", "marker"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("automation_rules.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    marker: Mapped[str] = mapped_column(String(64))
    fired_at: Mapped[datetime] = mapped_column(default=clock.now)


class Macro(Base):
    """A reply template (sandboxed Jinja) plus field changes; ``owner_id`` null means shared."""

    __tablename__ = "macros"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    body_template: Mapped[str] = mapped_column(Text, default="")
    public_reply: Mapped[bool] = mapped_column(Boolean, default=True)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class EscalationRule(Base):
    """One cell of the escalation matrix: for tickets of ``priority`` (and ``tier``, or any tier
    when null), ``minutes_after_breach`` after a target breached, notify ``notify``; with
    ``page_on_call`` urgent breaches on hot accounts page the on-call person."""

    __tablename__ = "escalation_rules"
    __table_args__ = (Index("ix_escalation_rules_priority_tier", "priority", "tier"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    priority: Mapped[str] = mapped_column(String(10))
    tier: Mapped[str | None] = mapped_column(String(20))
    minutes_after_breach: Mapped[int] = mapped_column(Integer, default=0)
    notify: Mapped[list[str]] = mapped_column(default=list)  # "assignee", "group", "email:a@b"
    slack_webhook_url: Mapped[str | None] = mapped_column(String(500))
    page_on_call: Mapped[bool] = mapped_column(Boolean, default=False)
    paging_url: Mapped[str | None] = mapped_column(String(500))
    paging_routing_key: Mapped[str | None] = mapped_column(String(64))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class EscalationFiring(Base):
    __tablename__ = "escalation_firings"
    __table_args__ = (UniqueConstraint("target_id", "escalation_rule_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("sla_targets.id", ondelete="CASCADE"))
    escalation_rule_id: Mapped[int] = mapped_column(ForeignKey("escalation_rules.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    fired_at: Mapped[datetime] = mapped_column(default=clock.now)
