"""Who is making a request: FastAPI dependencies for the API and the pages.

- :func:`api_actor`: ``Authorization: Bearer <token>`` (one indexed SHA-256 lookup, never a slow
  hash per request) or the session cookie; with the cookie, unsafe methods must carry the
  session's CSRF token in the ``X-CSRF-Token`` header or a ``csrf_token`` form field. Failures are
  401/403 problems.
- :func:`page_actor`: the session cookie only; an anonymous visitor is sent to
  ``/login?next=…`` (303), a form post without the CSRF token gets a 403 page.
- :func:`csrf_token`: the token a page puts in its forms (``<input name="csrf_token">``).

Both dependencies leave ``request.state.layout`` with ``current_user`` and ``csrf_token`` so every
template extending ``web/base.html`` can show who is signed in and post forms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import Connection, Row
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.auth.errors import AuthenticationError, PermissionDeniedError
from opsdesk.auth.models import User, WebSession
from opsdesk.auth.service import (
    TokenUser,
    find_token,
    last_use_is_stale,
    token_user,
    touch_last_used,
    user_for_token,
)
from opsdesk.auth.sessions import (
    StartedSession,
    attach_session,
    csrf_matches,
    find_session,
    last_seen_is_stale,
    session_for_secret,
    start_session,
    touch_last_seen,
)
from opsdesk.config import Settings
from opsdesk.web import idempotency
from opsdesk.web.sessions import READ_METHODS, database_of, request_session

SESSION_COOKIE = "opsdesk_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class LoginRequired(Exception):
    """An anonymous visitor asked for a page; the app answers 303 to ``location``."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class CsrfFailedError(PermissionDeniedError):
    code = "csrf_failed"
    title = "CSRF check failed"


def login_redirect(request: Request, error: Exception) -> RedirectResponse:
    """The exception handler for :class:`LoginRequired` (registered by ``create_app``)."""
    del request
    location = error.location if isinstance(error, LoginRequired) else "/login"
    return RedirectResponse(location, status_code=303)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(target, safe="/")


def safe_next(target: str | None) -> str:
    """Only local paths: ``//evil.example`` or ``https://…`` would make the login an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def presented_csrf(request: Request) -> str | None:
    """The CSRF token the request carries: the header, or the form field of a form post."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.method in READ_METHODS:
        return None
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        # Starlette caches the parsed form, so the handler's Form(...) parameters still work.
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise AuthenticationError("use Authorization: Bearer <API token>")
    return credentials.strip()


def _remember(request: Request, user: User, web_session: WebSession | None) -> None:
    request.state.web_session = web_session
    token = web_session.csrf_token if web_session is not None else ""
    request.state.csrf_token = token
    layout = dict(getattr(request.state, "layout", {}))
    layout.update({"current_user": user, "csrf_token": token})
    request.state.layout = layout


def current_web_session(request: Request, session: Session) -> WebSession | None:
    """The signed-in browser session, attached to the request's session (on SQLite, a write
    request reads it outside the write lock: see :func:`_outside_the_write_lock`)."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    if request.method in READ_METHODS or not database_of(request).is_sqlite:
        return session_for_secret(session, secret)
    found = _outside_the_write_lock(
        request,
        lambda connection: find_session(connection, secret),
        last_seen_is_stale,
        lambda touching, row: touch_last_seen(touching, row._mapping["id"], clock.now()),
    )
    return None if found is None else attach_session(session, found)


def _outside_the_write_lock(
    request: Request,
    find: Callable[[Connection], Row[Any] | None],
    is_stale: Callable[[Row[Any]], bool],
    touch: Callable[[Session, Row[Any]], None],
) -> Row[Any] | None:
    """SQLite, a write request: the credential's row (token or browser session, with its user)
    read on a connection of its own, its stale last-use time touched in a short transaction of
    its own, committed in this turn.

    A write request's session takes the write lock at its first statement, and the dependency
    that authenticates may run in another thread-pool turn than the handler: had it taken the
    lock, the lock would be held while the request waits for the handler's turn (and with every
    pool thread waiting for the lock, that turn would not come). PostgreSQL locks rows, not the
    database: there the request's session reads it (one connection, not two)."""
    database = database_of(request)
    with database.read_connection() as connection:
        found = find(connection)
    if found is not None and is_stale(found):
        with database.transaction() as touching:
            touch(touching, found)
    return found


def _token_user(request: Request, session: Session, token: str) -> TokenUser | None:
    """The token's user, attached to the request's session (on SQLite, a write request reads it
    outside the write lock: see :func:`_outside_the_write_lock`)."""
    if request.method in READ_METHODS or not database_of(request).is_sqlite:
        return user_for_token(session, token)
    found = _outside_the_write_lock(
        request,
        lambda connection: find_token(connection, token),
        last_use_is_stale,
        lambda touching, row: touch_last_used(touching, row._mapping["token_id"]),
    )
    return None if found is None else token_user(session, found)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What an API request presents besides its headers, read from its body on the event loop:
    the CSRF token of a form post and the digest of a body sent with an ``Idempotency-Key``."""

    presented_csrf: str | None
    body_digest: str | None


async def api_credentials(
    presented: str | None = Depends(presented_csrf),
    digest: str | None = Depends(idempotency.request_digest),
) -> Credentials:
    return Credentials(presented_csrf=presented, body_digest=digest)


def authenticate(request: Request, session: Session, credentials: Credentials) -> Actor:
    """The staff member behind an API request (Bearer token, or session cookie + CSRF).

    A POST with an ``Idempotency-Key`` is checked here, once the user is known: a repeat is
    answered with the first answer before the handler runs."""
    token = _bearer_token(request)
    if token is not None:
        found = _token_user(request, session, token)
        if found is None:
            raise AuthenticationError("the API token is not valid or was revoked")
        _remember(request, found.user, None)
        actor = Actor.for_user(found.user, via="api", token_id=found.token_id)
    else:
        web_session = current_web_session(request, session)
        if web_session is None:
            raise AuthenticationError("sign in, or send Authorization: Bearer <API token>")
        if request.method not in READ_METHODS and not csrf_matches(web_session, credentials.presented_csrf):
            raise CsrfFailedError(f"send the session's CSRF token in the {CSRF_HEADER} header")
        _remember(request, web_session.user, web_session)
        actor = Actor.for_user(web_session.user, via="web")
    if credentials.body_digest is not None and actor.user is not None:
        idempotency.begin(session, request, user_id=actor.user.id, digest=credentials.body_digest)
    return actor


def api_actor(
    request: Request,
    session: Session = Depends(request_session),
    credentials: Credentials = Depends(api_credentials),
) -> Actor:
    """The dependency form of :func:`authenticate` (``actor: ApiActor``)."""
    return authenticate(request, session, credentials)


def page_actor(
    request: Request,
    session: Session = Depends(request_session),
    presented: str | None = Depends(presented_csrf),
) -> Actor:
    """The signed-in staff member behind a page request; anonymous visitors go to the login."""
    web_session = current_web_session(request, session)
    if web_session is None:
        raise LoginRequired(login_url(request))
    if request.method not in READ_METHODS and not csrf_matches(web_session, presented):
        raise HTTPException(403, "This form has expired or did not come from opsdesk. Reload and retry.")
    _remember(request, web_session.user, web_session)
    return Actor.for_user(web_session.user, via="web")


def optional_page_user(request: Request, session: Session) -> User | None:
    """The signed-in user if any (for pages anyone may see, such as the login page)."""
    web_session = current_web_session(request, session)
    if web_session is None:
        return None
    _remember(request, web_session.user, web_session)
    return web_session.user


def csrf_token(request: Request) -> str:
    """The CSRF token of the signed-in session, for forms and for the X-CSRF-Token header."""
    token: str = getattr(request.state, "csrf_token", "")
    return token


def sign_in(request: Request, session: Session, user: User) -> StartedSession:
    """Start a fresh session for ``user`` (a new secret every time: no session fixation).
    Give the answer the cookie with :func:`set_session_cookie`."""
    settings = settings_of(request)
    started = start_session(
        session,
        user,
        max_age=timedelta(seconds=settings.session_max_age_seconds),
        ip_address=client_address(request),
        user_agent=request.headers.get("user-agent"),
    )
    _remember(request, user, started.web_session)
    return started


def set_session_cookie(request: Request, response: Response, started: StartedSession) -> None:
    settings = settings_of(request)
    response.set_cookie(
        SESSION_COOKIE,
        started.secret,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.base_url.startswith("https://"),
        path="/",
    )


def sign_out_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


# Annotated shorthands for handlers: ``def handler(actor: ApiActor, session: DbSession)``.
ApiActor = Annotated[Actor, Depends(api_actor)]
# For endpoints that authenticate in :mod:`opsdesk.web.write_lane`.
ApiCredentials = Annotated[Credentials, Depends(api_credentials)]
PageActor = Annotated[Actor, Depends(page_actor)]
