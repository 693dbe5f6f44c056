"""The vocabularies of the metric layer: kinds of metric, dimensions, grains, time bases."""

from __future__ import annotations

from enum import StrEnum


class MetricKind(StrEnum):
    """How a metric aggregates: a count of tickets, a duration in seconds (mean, p50, p90),
    a rate (share of the population meeting a condition) or a score (mean of a rating)."""

    COUNT = "count"
    DURATION = "duration"
    RATE = "rate"
    SCORE = "score"


class Dimension(StrEnum):
    GROUP = "group"
    AGENT = "agent"
    VENDOR = "vendor"
    CHANNEL = "channel"
    CATEGORY = "category"
    PRIORITY = "priority"
    TIER = "tier"
    PLAN = "plan"
    LANGUAGE = "language"
    ACCOUNT = "account"
    SLA_POLICY = "sla_policy"


class Grain(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class TimeBasis(StrEnum):
    CALENDAR = "calendar"
    BUSINESS = "business"


class ExperimentStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    STOPPED = "stopped"


class ExperimentSubject(StrEnum):
    """What an experiment varies; the owning domain asks :func:`arm_for` which variant applies."""

    ROUTING_RULE = "routing_rule"
    MACRO = "macro"
    SLA_WINDOW = "sla_window"
