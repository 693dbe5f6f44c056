"""Signing in with email and password, rate-limited per client address and per email.

Invariants: at most ``limit`` password checks per address and per email within
:data:`WINDOW`; a refused attempt does not check the password at all (argon2 is deliberately slow,
so the limit also bounds the CPU an attacker can make us spend). Every check is recorded, and the
caller must commit that record even when the login fails (otherwise the limit would never bite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from opsdesk import clock
from opsdesk.auth.errors import AuthenticationError, RateLimitedError
from opsdesk.auth.models import LoginAttempt, User
from opsdesk.auth.service import authenticate_password

WINDOW = timedelta(minutes=1)
# Rows older than this are useless for the limit; they are pruned as logins happen.
RETENTION = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    user: User | None
    error: AuthenticationError | RateLimitedError | None


def _failures_since(session: Session, column: InstrumentedAttribute[str], value: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(LoginAttempt)
            .where(
                column == value,
                LoginAttempt.created_at > since,
                LoginAttempt.succeeded.is_(False),
            )
        )
        or 0
    )


def check_rate_limit(session: Session, *, ip_address: str, email: str, limit: int) -> None:
    """Refuse when this address or this email already failed ``limit`` times in the window."""
    now = clock.now()
    since = now - WINDOW
    normalized = email.strip().lower()
    by_address = _failures_since(session, LoginAttempt.ip_address, ip_address, since)
    by_email = _failures_since(session, LoginAttempt.email, normalized, since)
    if by_address >= limit or by_email >= limit:
        oldest = session.scalar(
            select(func.min(LoginAttempt.created_at)).where(
                (LoginAttempt.ip_address == ip_address) | (LoginAttempt.email == normalized),
                LoginAttempt.created_at > since,
                LoginAttempt.succeeded.is_(False),
            )
        )
        wait = WINDOW - (now - oldest) if oldest is not None else WINDOW
        seconds = max(1, math.ceil(wait.total_seconds()))
        raise RateLimitedError(
            f"too many sign-in attempts; try again in {seconds} seconds", retry_after_seconds=seconds
        )


def attempt_login(
    session: Session, *, email: str, password: str, ip_address: str, limit: int
) -> LoginOutcome:
    """Check the rate limit, then the password; record the attempt. Never raises for a bad
    password: the caller commits the recorded attempt and shows the error."""
    try:
        check_rate_limit(session, ip_address=ip_address, email=email, limit=limit)
    except RateLimitedError as error:
        return LoginOutcome(user=None, error=error)
    now = clock.now()
    session.execute(delete(LoginAttempt).where(LoginAttempt.created_at < now - RETENTION))
    user = authenticate_password(session, email, password)
    session.add(
        LoginAttempt(
            ip_address=ip_address[:64],
            email=email.strip().lower()[:320],
            succeeded=user is not None,
            created_at=now,
        )
    )
    session.flush()
    if user is None:
        return LoginOutcome(user=None, error=AuthenticationError("wrong email or password"))
    return LoginOutcome(user=user, error=None)
