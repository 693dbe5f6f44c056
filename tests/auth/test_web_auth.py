"""Bearer tokens, browser sessions, CSRF and the login rate limit, through the real ASGI app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import Depends, Request
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth import service as auth_service
from opsdesk.auth.actor import Actor
from opsdesk.auth.login import attempt_login
from opsdesk.auth.models import LoginAttempt, WebSession
from opsdesk.auth.sessions import session_for_secret, start_session
from opsdesk.web.auth import csrf_token, page_actor
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_user
from tests.support.web import app_client, bearer_headers, sign_in

PASSWORD = "correct horse battery"
START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> TestClient:
    client = app_client(database, tmp_path, login_attempts_per_minute=3)

    # A page of our own to exercise page_actor and csrf_token (the product's pages use the same).
    def probe(request: Request, actor: Actor = Depends(page_actor)) -> PlainTextResponse:
        return PlainTextResponse(f"{actor.name}|{csrf_token(request)}")

    app = client.app
    app.add_api_route("/probe", probe, methods=["GET", "POST"])  # type: ignore[attr-defined]
    return client


def test_bearer_token_authenticates_and_problem_on_bad_token(db: Session, client: TestClient) -> None:
    user = make_user(db, role="agent", name="Ada Agent")
    answer = client.get("/api/v1/me", headers=bearer_headers(db, user))
    assert answer.status_code == 200
    assert answer.json()["email"] == user.email

    wrong = client.get("/api/v1/me", headers={"Authorization": "Bearer odk_not-a-token"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert wrong.json()["code"] == "not_authenticated"

    basic = client.get("/api/v1/me", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401
    assert client.get("/api/v1/me").status_code == 401


def test_revoked_token_and_inactive_user_are_refused(db: Session, client: TestClient) -> None:
    user = make_user(db)
    issued = auth_service.issue_token(db, SYSTEM, user)
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    auth_service.revoke_token(db, SYSTEM, issued.token.id)
    db.flush()
    assert client.get("/api/v1/me", headers=headers).status_code == 401

    other = make_user(db)
    other_headers = bearer_headers(db, other)
    other.is_active = False
    db.flush()
    assert client.get("/api/v1/me", headers=other_headers).status_code == 401


def test_login_form_starts_a_session_and_csrf_guards_unsafe_requests(db: Session, client: TestClient) -> None:
    user = make_user(db, password=PASSWORD)
    token = sign_in(client, user.email, PASSWORD, next_path="/probe")
    assert client.get("/api/v1/me").json()["id"] == user.id

    refused = client.delete("/api/v1/session")
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.get("/api/v1/me").status_code == 200  # the refused sign-out changed nothing

    assert client.delete("/api/v1/session", headers={"X-CSRF-Token": token}).status_code == 204
    assert client.get("/api/v1/me").status_code == 401


def test_wrong_password_shows_the_form_again(db: Session, client: TestClient) -> None:
    user = make_user(db, password=PASSWORD)
    page = client.get("/login")
    form_token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post(
        "/login", data={"email": user.email, "password": "nope", "next": "/", "csrf_token": form_token}
    )
    assert answer.status_code == 401
    assert "wrong email or password" in answer.text
    assert "opsdesk_session" not in answer.cookies


def test_login_form_without_its_token_is_refused(db: Session, client: TestClient) -> None:
    user = make_user(db, password=PASSWORD)
    answer = client.post("/login", data={"email": user.email, "password": PASSWORD, "csrf_token": "forged"})
    assert answer.status_code == 403
    assert "expired" in answer.text
    assert db.scalar(select(func.count()).select_from(WebSession)) == 0


def test_login_never_redirects_off_site(db: Session, client: TestClient) -> None:
    user = make_user(db, password=PASSWORD)
    page = client.get("/login", params={"next": "//evil.example/x"})
    form_token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post(
        "/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "next": "//evil.example/x",
            "csrf_token": form_token,
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_page_actor_redirects_anonymous_and_checks_form_csrf(db: Session, client: TestClient) -> None:
    anonymous = client.get("/probe", params={"a": "1"})
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=/probe%3Fa%3D1"

    user = make_user(db, password=PASSWORD, name="Pat Page")
    token = sign_in(client, user.email, PASSWORD)
    assert client.get("/probe").text == f"Pat Page|{token}"
    forged = client.post("/probe", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert "text/html" in forged.headers["content-type"]
    assert client.post("/probe", data={"csrf_token": token}).status_code == 200


def test_logout_revokes_the_session(db: Session, client: TestClient) -> None:
    user = make_user(db, password=PASSWORD)
    token = sign_in(client, user.email, PASSWORD)
    answer = client.post("/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    client.cookies.clear()
    revoked = db.scalars(select(WebSession).where(WebSession.user_id == user.id)).one()
    db.refresh(revoked)
    assert revoked.revoked_at is not None


def test_login_attempts_are_rate_limited_per_address(db: Session, client: TestClient) -> None:
    user = make_user(db, password=PASSWORD)
    for _ in range(3):
        wrong = client.post("/api/v1/session", json={"email": user.email, "password": "bad password"})
        assert wrong.status_code == 401
    limited = client.post("/api/v1/session", json={"email": user.email, "password": PASSWORD})
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # The refused attempt did not check the password, so it is not recorded.
    assert db.scalar(select(func.count()).select_from(LoginAttempt)) == 3

    page = client.get("/login")
    form_token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    other = make_user(db, password=PASSWORD)
    form = client.post(
        "/login", data={"email": other.email, "password": PASSWORD, "next": "/", "csrf_token": form_token}
    )
    assert form.status_code == 429
    assert "too many sign-in attempts" in form.text


def test_rate_limit_is_per_email_and_lifts_after_the_window(db: Session) -> None:
    user = make_user(db, password=PASSWORD)
    with clock.frozen(START) as frozen:
        for address in ("10.0.0.1", "10.0.0.2"):
            outcome = attempt_login(db, email=user.email, password="bad", ip_address=address, limit=2)
            assert outcome.user is None
        refused = attempt_login(db, email=user.email, password=PASSWORD, ip_address="10.0.0.3", limit=2)
        assert refused.error is not None
        assert refused.error.code == "rate_limited"
        other = make_user(db, password=PASSWORD)
        assert attempt_login(db, email=other.email, password=PASSWORD, ip_address="10.0.0.3", limit=2).user
        frozen.advance(timedelta(seconds=61))
        assert attempt_login(db, email=user.email, password=PASSWORD, ip_address="10.0.0.3", limit=2).user


def test_sessions_expire_and_revoked_sessions_end(db: Session) -> None:
    user = make_user(db)
    with clock.frozen(START) as frozen:
        started = start_session(db, user, max_age=timedelta(hours=1))
        assert session_for_secret(db, started.secret) is not None
        assert session_for_secret(db, started.secret + "x") is None
        frozen.advance(timedelta(minutes=30))
        assert session_for_secret(db, started.secret) is not None
        db.refresh(started.web_session)
        assert started.web_session.last_seen_at == START + timedelta(minutes=30)
        frozen.advance(timedelta(minutes=31))
        assert session_for_secret(db, started.secret) is None
    stored = db.scalars(select(WebSession)).one()
    assert stored.secret_digest != started.secret
