"""The fixed vocabularies of tickets, people and accounts."""

from __future__ import annotations

from enum import StrEnum


class StatusCategory(StrEnum):
    """The six status categories. Admins add named statuses inside them; rules use the category."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    CLOSED = "closed"


UNSOLVED_STATUSES: frozenset[str] = frozenset({"new", "open", "pending", "on_hold"})


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


PRIORITY_RANK: dict[str, int] = {"low": 0, "normal": 1, "high": 2, "urgent": 3}


class TicketType(StrEnum):
    QUESTION = "question"
    INCIDENT = "incident"
    PROBLEM = "problem"
    TASK = "task"


class Channel(StrEnum):
    EMAIL = "email"
    WEB = "web"
    CHAT = "chat"
    SLACK = "slack"
    API = "api"
    PHONE = "phone"
    COMMUNITY = "community"


class AuthorKind(StrEnum):
    STAFF = "staff"
    CUSTOMER = "customer"
    SYSTEM = "system"


class AccountTier(StrEnum):
    ENTERPRISE = "enterprise"
    BUSINESS = "business"
    SELF_SERVE = "self_serve"
    CONSUMER = "consumer"


class FieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    DROPDOWN = "dropdown"
    CHECKBOX = "checkbox"
