"""The login and logout pages.

The login form is protected by a double-submit token (a cookie and a hidden field that must
match), so another site cannot sign a browser into an account of its choosing. A failed attempt is
answered with a page (401, or 429 while rate-limited) rather than an exception, so the request's
transaction commits the recorded attempt and the rate limit counts it.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.auth.login import attempt_login
from opsdesk.auth.sessions import revoke_session
from opsdesk.web.auth import (
    client_address,
    optional_page_user,
    page_actor,
    safe_next,
    set_session_cookie,
    settings_of,
    sign_in,
    sign_out_cookie,
)
from opsdesk.web.sessions import request_session
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "opsdesk_login_csrf"


def _login_page(
    request: Request, *, next_path: str, email: str = "", error: str = "", status_code: int = 200
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "auth/login.html",
        {"login_csrf": token, "next": next_path, "email": email, "error": error},
        status_code=status_code,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", path="/login")
    return response


@router.get("/login", response_model=None)
def login_form(request: Request, next: str = "/", session: Session = Depends(request_session)) -> Response:
    if optional_page_user(request, session) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next_path=safe_next(next))


@router.post("/login", response_model=None)
def login_submit(
    request: Request,
    email: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    csrf_token: str = Form(""),
    session: Session = Depends(request_session),
) -> Response:
    next_path = safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_page(
            request,
            next_path=next_path,
            email=email,
            error="The sign-in form expired. Please try again.",
            status_code=403,
        )
    outcome = attempt_login(
        session,
        email=email,
        password=password,
        ip_address=client_address(request),
        limit=settings_of(request).login_attempts_per_minute,
    )
    if outcome.user is None:
        error = outcome.error
        page = _login_page(
            request,
            next_path=next_path,
            email=email,
            error=error.detail if error is not None else "Sign-in failed.",
            status_code=error.status if error is not None else 401,
        )
        if error is not None:
            page.headers.update(error.headers)
        return page
    started = sign_in(request, session, outcome.user)
    redirect = RedirectResponse(next_path, status_code=303)
    set_session_cookie(request, redirect, started)
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return redirect


@router.post("/logout", response_model=None)
def logout(
    request: Request, actor: Actor = Depends(page_actor), session: Session = Depends(request_session)
) -> Response:
    del actor  # page_actor has checked the session and the form's CSRF token
    web_session = request.state.web_session
    if web_session is not None:
        revoke_session(session, web_session)
    response = RedirectResponse("/login", status_code=303)
    sign_out_cookie(response)
    return response
