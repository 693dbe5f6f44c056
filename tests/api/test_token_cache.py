"""A process keeps the live API tokens it has seen (``opsdesk.auth.service.find_token``), valid at
one configuration generation: a revocation, a deactivation or any change of the token's user but
its availability bumps the generation (migration core_05) and is refused or seen at the next
request."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from opsdesk.auth import service as auth_service
from opsdesk.auth.models import User
from tests.support.databases import BoundDatabase, recorded_statements
from tests.support.factories import SYSTEM, make_user
from tests.support.web import bearer_headers


def _token_of(db: Session, user: User) -> tuple[int, dict[str, str]]:
    issued = auth_service.issue_token(db, SYSTEM, user, name="cached")
    db.flush()
    return issued.token.id, {"Authorization": f"Bearer {issued.secret}"}


def _token_reads(database: BoundDatabase, client: TestClient, headers: dict[str, str]) -> int:
    with recorded_statements(database) as statements:
        answer = client.get("/api/v1/me", headers=headers)
        assert answer.status_code == 200, answer.text
    return sum("FROM api_tokens" in statement for statement in statements)


def test_a_token_is_read_at_its_first_use_only(
    db: Session, database: BoundDatabase, client: TestClient
) -> None:
    _, headers = _token_of(db, make_user(db))
    assert _token_reads(database, client, headers) == 1
    assert _token_reads(database, client, headers) == 0
    assert _token_reads(database, client, headers) == 0


def test_a_revoked_token_is_refused_at_the_next_request(db: Session, client: TestClient) -> None:
    admin = bearer_headers(db, make_user(db, role="admin"))
    token_id, headers = _token_of(db, make_user(db))
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert client.get("/api/v1/me", headers=headers).status_code == 200  # served from memory
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=admin).status_code == 204
    refused = client.get("/api/v1/me", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_a_change_of_the_user_is_seen_and_a_deactivation_refused(db: Session, client: TestClient) -> None:
    admin = bearer_headers(db, make_user(db, role="admin"))
    agent = make_user(db, name="Ada Agent")
    _, headers = _token_of(db, agent)
    assert client.get("/api/v1/me", headers=headers).json()["role"] == "agent"
    changed = client.patch(
        f"/api/v1/users/{agent.id}", headers=admin, json={"role": "lead", "name": "Ada Lead"}
    )
    assert changed.status_code == 200, changed.text
    me = client.get("/api/v1/me", headers=headers).json()
    assert (me["role"], me["name"]) == ("lead", "Ada Lead")
    assert client.delete(f"/api/v1/users/{agent.id}", headers=admin).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_availability_changes_without_a_new_generation_and_is_read_fresh(
    db: Session, database: BoundDatabase, client: TestClient
) -> None:
    agent = make_user(db)
    _, headers = _token_of(db, agent)
    before = client.get("/api/v1/me", headers=headers).json()["availability"]
    changed_to = "online" if before != "online" else "away"
    answer = client.patch(f"/api/v1/users/{agent.id}", headers=headers, json={"availability": changed_to})
    assert answer.status_code == 200, answer.text
    # Going on shift is not a change of the credentials: the token stays in memory...
    assert _token_reads(database, client, headers) == 0
    # ...and the user's availability is not taken from the remembered row.
    assert client.get("/api/v1/me", headers=headers).json()["availability"] == changed_to
