"""Authentication and permission errors with stable codes."""

from __future__ import annotations

from opsdesk.errors import DomainError


class PermissionDeniedError(DomainError):
    code = "permission_denied"
    status = 403
    title = "Permission denied"


class AuthenticationError(DomainError):
    code = "not_authenticated"
    status = 401
    title = "Not authenticated"


class RateLimitedError(DomainError):
    code = "rate_limited"
    status = 429
    title = "Too many attempts"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds
        self.headers = {"Retry-After": str(retry_after_seconds)}
