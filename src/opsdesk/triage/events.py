"""Triage-domain events, past tense, raised inside the transaction that made the decision."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TicketClassified:
    ticket_id: int
    category: str | None
    confidence: float
    outcome: str
    model_version: int | None


@dataclass(frozen=True, slots=True)
class TicketRouted:
    ticket_id: int
    rule_id: int | None
    group_id: int | None


@dataclass(frozen=True, slots=True)
class TicketAssigned:
    ticket_id: int
    assignee_id: int | None
    group_id: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class AgentAvailabilityChanged:
    user_id: int
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ModelActivated:
    version: int
    previous_version: int | None
