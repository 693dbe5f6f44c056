"""The auth API: browser sessions for scripts and single-page use, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.login import attempt_login
from opsdesk.auth.schemas import LoginIn, SessionOut, UserOut
from opsdesk.auth.sessions import revoke_session
from opsdesk.errors import NotFoundError
from opsdesk.web.auth import (
    api_actor,
    client_address,
    set_session_cookie,
    settings_of,
    sign_in,
    sign_out_cookie,
)
from opsdesk.web.problems import problem_response
from opsdesk.web.sessions import request_session

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/session", response_model=SessionOut, responses={401: {}, 429: {}})
def create_session(body: LoginIn, request: Request, session: Session = Depends(request_session)) -> Response:
    """Sign in with email and password; the answer sets the session cookie and gives its CSRF
    token. Rate-limited per client address and per email."""
    outcome = attempt_login(
        session,
        email=body.email,
        password=body.password,
        ip_address=client_address(request),
        limit=settings_of(request).login_attempts_per_minute,
    )
    if outcome.user is None or outcome.error is not None:
        # Answer rather than raise: the recorded attempt must commit for the limit to count it.
        error = outcome.error
        assert error is not None
        return problem_response(
            request, error.status, error.title, error.detail, error.code, [], headers=error.headers
        )
    started = sign_in(request, session, outcome.user)
    payload = SessionOut(
        user=UserOut.of(outcome.user),
        csrf_token=started.web_session.csrf_token,
        expires_at=started.web_session.expires_at,
    )
    response = JSONResponse(payload.model_dump(mode="json"))
    set_session_cookie(request, response, started)
    return response


@router.get("/session", response_model=SessionOut)
def read_session(request: Request, actor: Actor = Depends(api_actor)) -> SessionOut:
    """The browser session the request was made with, and its CSRF token for unsafe requests."""
    web_session = getattr(request.state, "web_session", None)
    if web_session is None or actor.user is None:
        raise NotFoundError("this request was not made with a browser session")
    return SessionOut(
        user=UserOut.of(actor.user), csrf_token=web_session.csrf_token, expires_at=web_session.expires_at
    )


@router.delete("/session", status_code=204, response_class=Response)
def delete_session(
    request: Request, actor: Actor = Depends(api_actor), session: Session = Depends(request_session)
) -> Response:
    """Sign out the browser session the request was made with."""
    del actor
    response = Response(status_code=204)
    web_session = getattr(request.state, "web_session", None)
    if web_session is not None:
        revoke_session(session, web_session)
        sign_out_cookie(response)
    return response


@router.get("/me", response_model=UserOut)
def me(actor: Actor = Depends(api_actor)) -> UserOut:
    assert actor.user is not None
    return UserOut.of(actor.user)
