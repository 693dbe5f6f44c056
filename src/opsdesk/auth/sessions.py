"""Browser sessions: server-side rows behind a random cookie secret.

Invariants: the cookie secret is never stored (only its SHA-256 digest); a session is valid while
it is not revoked, not expired and its user is active; every session has its own CSRF token, which
unsafe requests made with the cookie must echo back. ``last_seen_at`` is written at most once a
minute so that reading a page stays a read.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import User, WebSession
from opsdesk.auth.tokens import digest

LAST_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class StartedSession:
    """A new session and the cookie secret for it (shown to the browser once, never stored)."""

    web_session: WebSession
    secret: str


def start_session(
    session: Session,
    user: User,
    *,
    max_age: timedelta,
    ip_address: str | None = None,
    user_agent: str | None = None,
) -> StartedSession:
    now = clock.now()
    secret = secrets.token_urlsafe(32)
    web_session = WebSession(
        user_id=user.id,
        secret_digest=digest(secret),
        csrf_token=secrets.token_urlsafe(32),
        ip_address=(ip_address or "")[:64] or None,
        user_agent=(user_agent or "")[:300] or None,
        created_at=now,
        last_seen_at=now,
        expires_at=now + max_age,
    )
    session.add(web_session)
    session.flush()
    return StartedSession(web_session=web_session, secret=secret)


def session_for_secret(session: Session, secret: str) -> WebSession | None:
    """The valid session behind a cookie secret, or None."""
    if not secret:
        return None
    now = clock.now()
    web_session = session.scalars(
        select(WebSession).where(WebSession.secret_digest == digest(secret), WebSession.revoked_at.is_(None))
    ).first()
    if web_session is None or web_session.expires_at <= now or not web_session.user.is_active:
        return None
    if now - web_session.last_seen_at > LAST_SEEN_RESOLUTION:
        touch_last_seen(session, web_session.id, now)
    return web_session


def touch_last_seen(session: Session, web_session_id: int, now: datetime) -> None:
    """Best effort: a reader that cannot take the write lock right now skips the touch."""
    try:
        with session.begin_nested():
            session.execute(
                update(WebSession).where(WebSession.id == web_session_id).values(last_seen_at=now)
            )
    except OperationalError:
        return


def revoke_session(session: Session, web_session: WebSession) -> None:
    if web_session.revoked_at is None:
        web_session.revoked_at = clock.now()
        session.flush()


def revoke_sessions_of(session: Session, user_id: int) -> int:
    """End every session of a user (deactivation, password change); returns how many."""
    result = session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def csrf_matches(web_session: WebSession, presented: str | None) -> bool:
    expected = web_session.csrf_token.encode()
    return bool(presented) and secrets.compare_digest(expected, (presented or "").encode())
