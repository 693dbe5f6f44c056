"""Automation errors with stable codes."""

from __future__ import annotations

from opsdesk.errors import ConflictError, NotFoundError, ValidationFailedError


class InvalidRuleError(ValidationFailedError):
    code = "invalid_rule"


class InvalidMacroError(ValidationFailedError):
    code = "invalid_macro"


class InvalidEscalationError(ValidationFailedError):
    code = "invalid_escalation"


class RuleNotFoundError(NotFoundError):
    code = "rule_not_found"


class MacroNotFoundError(NotFoundError):
    code = "macro_not_found"


class EscalationNotFoundError(NotFoundError):
    code = "escalation_not_found"


class MacroPreviewOutdatedError(ConflictError):
    """The ticket (or the macro) changed between the preview and the apply: nothing was applied."""

    code = "macro_preview_outdated"
