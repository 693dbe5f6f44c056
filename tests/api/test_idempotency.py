"""Idempotency-Key on POST: the first answer again instead of a second change."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.tickets.models import Message, Ticket
from opsdesk.web.models import IdempotencyRecord
from tests.support.factories import make_ticket, make_user
from tests.support.web import bearer_headers

NEW_TICKET = {"subject": "Double charge", "body": "Charged twice", "requester": {"email": "kim@example.org"}}


def _tickets(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Ticket)) or 0)


def test_repeat_returns_the_first_answer(db: Session, client: TestClient) -> None:
    headers = {**bearer_headers(db, make_user(db)), "Idempotency-Key": "order-7"}
    before = _tickets(db)
    first = client.post("/api/v1/tickets", headers=headers, json=NEW_TICKET)
    assert first.status_code == 201
    second = client.post("/api/v1/tickets", headers=headers, json=NEW_TICKET)
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["location"] == first.headers["location"]
    assert "idempotent-replayed" not in first.headers
    assert _tickets(db) == before + 1
    record = db.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == "order-7")).one()
    assert (record.method, record.path, record.status_code) == ("POST", "/api/v1/tickets", 201)


def test_same_key_with_another_body_is_refused(db: Session, client: TestClient) -> None:
    headers = {**bearer_headers(db, make_user(db)), "Idempotency-Key": "order-8"}
    assert client.post("/api/v1/tickets", headers=headers, json=NEW_TICKET).status_code == 201
    before = _tickets(db)
    other = client.post("/api/v1/tickets", headers=headers, json={**NEW_TICKET, "subject": "Another"})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"
    assert _tickets(db) == before


def test_keys_belong_to_their_user(db: Session, client: TestClient) -> None:
    before = _tickets(db)
    for user in (make_user(db), make_user(db)):
        headers = {**bearer_headers(db, user), "Idempotency-Key": "shared-key"}
        assert client.post("/api/v1/tickets", headers=headers, json=NEW_TICKET).status_code == 201
    assert _tickets(db) == before + 2


def test_a_refused_request_is_not_remembered(db: Session, client: TestClient) -> None:
    headers = {**bearer_headers(db, make_user(db)), "Idempotency-Key": "retry-me"}
    bad = client.post("/api/v1/tickets", headers=headers, json={**NEW_TICKET, "subject": " "})
    assert bad.status_code == 422
    assert db.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "retry-me")) is None
    fixed = client.post("/api/v1/tickets", headers=headers, json=NEW_TICKET)
    assert fixed.status_code == 201


def test_messages_are_not_posted_twice(db: Session, client: TestClient) -> None:
    headers = {**bearer_headers(db, make_user(db)), "Idempotency-Key": "reply-1"}
    ticket = make_ticket(db)
    for _ in range(2):
        answer = client.post(f"/api/v1/tickets/{ticket.id}/messages", headers=headers, json={"body": "Hello"})
        assert answer.status_code == 201
    count = db.scalar(select(func.count()).select_from(Message).where(Message.ticket_id == ticket.id))
    assert count == 2  # the customer's first message and one reply
    too_long = client.post(
        f"/api/v1/tickets/{ticket.id}/messages",
        headers={**headers, "Idempotency-Key": "k" * 201},
        json={"body": "Hello"},
    )
    assert too_long.status_code == 422
