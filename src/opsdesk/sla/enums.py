"""SLA vocabularies: the four metrics and the states of a ticket's target."""

from __future__ import annotations

from enum import StrEnum


class Metric(StrEnum):
    FIRST_REPLY = "first_reply"
    NEXT_REPLY = "next_reply"
    PERIODIC_UPDATE = "periodic_update"
    RESOLUTION = "resolution"


class TargetStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ACHIEVED = "achieved"
    BREACHED = "breached"


class TargetKind(StrEnum):
    POLICY = "policy"  # started by the ticket's SLA policy
    DEADLINE = "deadline"  # a fixed due time set by another domain (never paused or re-timed)


# Waiting on the customer pauses these metrics; on_hold pauses them when the policy says so.
PAUSED_BY_PENDING: frozenset[Metric] = frozenset({Metric.RESOLUTION, Metric.PERIODIC_UPDATE})
CONDITION_FIELDS: tuple[str, ...] = ("priority", "tier", "channel", "group_id", "category")
