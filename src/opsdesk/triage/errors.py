"""Triage-domain errors with stable codes."""

from __future__ import annotations

from opsdesk.errors import ConflictError, NotFoundError, ValidationFailedError


class InvalidRuleSetError(ValidationFailedError):
    code = "invalid_routing_rules"
    title = "Invalid routing rules"


class InvalidTaxonomyError(ValidationFailedError):
    code = "invalid_taxonomy"
    title = "Invalid category"


class InvalidKeywordRuleError(ValidationFailedError):
    code = "invalid_keyword_rule"
    title = "Invalid keyword rule"


class InvalidTriageSettingsError(ValidationFailedError):
    code = "invalid_triage_settings"
    title = "Invalid triage settings"


class InvalidAssignmentError(ValidationFailedError):
    code = "invalid_assignment"
    title = "Invalid assignment"


class ModelVersionNotFoundError(NotFoundError):
    code = "triage_model_not_found"


class RoutingRuleNotFoundError(NotFoundError):
    code = "routing_rule_not_found"


class PredictionNotFoundError(NotFoundError):
    code = "prediction_not_found"


class CategoryNotFoundError(NotFoundError):
    code = "category_not_found"


class NotEnoughTrainingDataError(ConflictError):
    code = "not_enough_training_data"
    title = "Not enough training data"


class RollbackRefusedError(ConflictError):
    code = "rollback_refused"
    title = "Rollback refused"
