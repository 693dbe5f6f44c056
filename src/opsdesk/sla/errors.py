"""SLA errors with stable codes."""

from __future__ import annotations

from opsdesk.errors import NotFoundError, ValidationFailedError


class InvalidCalendarError(ValidationFailedError):
    code = "invalid_calendar"


class InvalidPolicyError(ValidationFailedError):
    code = "invalid_sla_policy"


class CalendarNotFoundError(NotFoundError):
    code = "calendar_not_found"


class PolicyNotFoundError(NotFoundError):
    code = "sla_policy_not_found"


class InvalidDeadlineError(ValidationFailedError):
    code = "invalid_sla_deadline"
