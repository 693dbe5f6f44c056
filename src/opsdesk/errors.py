"""The base of every domain error: a stable code, an HTTP-ish status and field details.

Handlers turn these into ``application/problem+json`` (RFC 9457); the CLI prints their message.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One bad field: where it is (``["body", "priority"]``) and what is wrong with it."""

    location: tuple[str | int, ...]
    message: str
    code: str = "invalid"


class DomainError(Exception):
    code = "domain_error"
    status = 400
    title = "Request refused"

    def __init__(self, detail: str, *, fields: list[FieldProblem] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields or []
        # Extra response headers for HTTP callers (e.g. Retry-After on a rate limit).
        self.headers: dict[str, str] = {}


class NotFoundError(DomainError):
    code = "not_found"
    status = 404
    title = "Not found"


class ValidationFailedError(DomainError):
    code = "validation_failed"
    status = 422
    title = "Validation failed"


class ConflictError(DomainError):
    code = "conflict"
    status = 409
    title = "Conflict"
