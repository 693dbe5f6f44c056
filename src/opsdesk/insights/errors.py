"""Errors of the insights domain, each with a stable code."""

from __future__ import annotations

from opsdesk.errors import DomainError, NotFoundError, ValidationFailedError


class InvalidMetricQueryError(ValidationFailedError):
    code = "invalid_metric_query"


class MetricUnavailableError(DomainError):
    """The metric is defined but its source data does not exist in this installation yet."""

    code = "metric_unavailable"
    status = 409
    title = "Metric unavailable"


class InvalidExperimentError(ValidationFailedError):
    code = "invalid_experiment"


class ExperimentNotFoundError(NotFoundError):
    code = "experiment_not_found"


class ExperimentStateError(DomainError):
    code = "experiment_state"
    status = 409
    title = "Experiment state"
