"""Roles, actor kinds and availability of staff."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    LEAD = "lead"
    AGENT = "agent"
    BILLING = "billing"
    CSM = "csm"
    CONTRACTOR = "contractor"
    VIEWER = "viewer"


class ActorKind(StrEnum):
    """Who made a change: a person, a rule, a macro, an integration, an API token or the system."""

    USER = "user"
    API_TOKEN = "api_token"  # noqa: S105 - a kind of actor, not a secret
    RULE = "rule"
    MACRO = "macro"
    INTEGRATION = "integration"
    CUSTOMER = "customer"
    SYSTEM = "system"


class Availability(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFF_SHIFT = "off_shift"
