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
from typing import Any

from sqlalchemy import Connection, Row, bindparam, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.models import User, WebSession
from opsdesk.auth.tokens import digest
from opsdesk.direct_insert import attach_as_loaded

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


_SESSIONS = WebSession.__table__
_USERS = User.__table__
_SESSION_KEYS = tuple(column.key for column in _SESSIONS.c)
_USER_KEYS = tuple(column.key for column in _USERS.c)
# The session and its user in one statement (the user's columns labelled apart: both have an id).
_SESSION_AND_USER = (
    select(*_SESSIONS.c, *(column.label(f"of_user_{column.key}") for column in _USERS.c))
    .select_from(_SESSIONS.join(_USERS, _USERS.c.id == _SESSIONS.c.user_id))
    .where(_SESSIONS.c.secret_digest == bindparam("digest"), _SESSIONS.c.revoked_at.is_(None))
)


def find_session(connection: Connection, secret: str) -> Row[Any] | None:
    """The row of the valid session behind a cookie secret, with its user's columns (None when it
    is expired, revoked or its user inactive). Readable on any connection: a write request on
    SQLite reads it before taking the write lock (see :func:`attach_session`)."""
    if not secret:
        return None
    found = connection.execute(_SESSION_AND_USER, {"digest": digest(secret)}).first()
    if found is None:
        return None
    values = found._mapping
    if values["expires_at"] <= clock.now() or not values["of_user_is_active"]:
        return None
    return found


def last_seen_is_stale(found: Row[Any]) -> bool:
    """Whether the session's ``last_seen_at`` should be touched (at most once a minute)."""
    return bool(clock.now() - found._mapping["last_seen_at"] > LAST_SEEN_RESOLUTION)


def attach_session(session: Session, found: Row[Any]) -> WebSession:
    """The session (and its user) of a row from :func:`find_session`, in ``session`` without a
    query."""
    values = found._mapping
    user = attach_as_loaded(session, User, {key: values[f"of_user_{key}"] for key in _USER_KEYS})
    return attach_as_loaded(session, WebSession, {key: values[key] for key in _SESSION_KEYS}, user=user)


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
