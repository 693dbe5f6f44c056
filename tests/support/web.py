"""HTTP clients on the real ASGI app, bound to a test's rolled-back database."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from opsdesk.app import create_app
from opsdesk.auth import service as auth_service
from opsdesk.auth.models import User
from opsdesk.config import Settings
from opsdesk.db import Database
from tests.support.factories import SYSTEM

_HIDDEN_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def app_client(database: Database, data_dir: Path, **settings: object) -> TestClient:
    """A client on ``create_app()`` whose requests run in the test's database transaction."""
    app = create_app(
        Settings(data_dir=data_dir, environment="test", **{"run_jobs_in_process": False, **settings}),  # type: ignore[arg-type]
        database=database,
    )
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


def bearer_headers(db: Session, user: User) -> dict[str, str]:
    """An Authorization header with a fresh API token of ``user``."""
    issued = auth_service.issue_token(db, SYSTEM, user, name="tests")
    db.flush()
    return {"Authorization": f"Bearer {issued.secret}"}


def sign_in(client: TestClient, email: str, password: str, next_path: str = "/") -> str:
    """Sign in through the login form; returns the session's CSRF token for later posts."""
    page = client.get("/login", params={"next": next_path})
    form_token = _HIDDEN_CSRF.search(page.text)
    assert form_token is not None
    answer = client.post(
        "/login",
        data={"email": email, "password": password, "next": next_path, "csrf_token": form_token.group(1)},
    )
    assert answer.status_code == 303, answer.text
    session = client.get("/api/v1/session")
    assert session.status_code == 200, session.text
    return str(session.json()["csrf_token"])
