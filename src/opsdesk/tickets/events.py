"""Ticket-domain events, past tense, raised by the ticket service inside its transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TicketCreated:
    ticket_id: int
    channel: str
    via: str


@dataclass(frozen=True, slots=True)
class MessageAdded:
    ticket_id: int
    message_id: int
    author_kind: str
    is_public: bool
    via: str


@dataclass(frozen=True, slots=True)
class TicketUpdated:
    ticket_id: int
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    via: str = "api"


@dataclass(frozen=True, slots=True)
class TicketMerged:
    source_ticket_id: int
    target_ticket_id: int
