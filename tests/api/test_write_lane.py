"""The write lane (opsdesk.web.write_lane): ticket creation runs one request at a time per
process, authenticates and commits in the same thread turn, and rolls back on any error."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.tickets import service as tickets_service
from opsdesk.tickets.models import Person, Ticket
from tests.support.factories import make_ticket, make_user
from tests.support.web import bearer_headers


def _count(db: Session, model: type[Any]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


class _Overlap:
    """Wraps a service function: counts how many calls run at once (each held open 20 ms, to
    widen the window in which a second request would overlap the first)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self._original = getattr(tickets_service, name)
        self._guard = threading.Lock()
        self._inside = 0
        self.most_inside = 0
        monkeypatch.setattr(tickets_service, name, self._call)

    def _call(self, *arguments: Any, **keywords: Any) -> Any:
        with self._guard:
            self._inside += 1
            self.most_inside = max(self.most_inside, self._inside)
        try:
            time.sleep(0.02)
            return self._original(*arguments, **keywords)
        finally:
            with self._guard:
                self._inside -= 1


def test_concurrent_creations_never_overlap_and_all_land(
    db: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = bearer_headers(db, make_user(db))
    overlap = _Overlap(monkeypatch, "create_ticket")
    before = _count(db, Ticket)

    async def create_at_once() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await asyncio.gather(
                *(
                    http.post(
                        "/api/v1/tickets",
                        headers=headers,
                        json={
                            "subject": f"Lane {number}",
                            "body": "hello",
                            "requester": {"email": "lane@example.org"},
                        },
                    )
                    for number in range(6)
                )
            )

    answers = asyncio.run(create_at_once())
    assert [answer.status_code for answer in answers] == [201] * 6
    assert len({answer.json()["id"] for answer in answers}) == 6
    assert overlap.most_inside == 1
    assert _count(db, Ticket) == before + 6


def test_a_refused_creation_changes_nothing(db: Session, client: TestClient) -> None:
    headers = bearer_headers(db, make_user(db))
    tickets, people = _count(db, Ticket), _count(db, Person)
    answer = client.post(
        "/api/v1/tickets",
        headers=headers,
        json={
            "subject": "Hi",
            "body": "x",
            "requester": {"email": "new-person@example.org"},
            "group_id": 999_999,
        },
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert (_count(db, Ticket), _count(db, Person)) == (tickets, people)


def test_the_lane_authenticates_in_its_turn(db: Session, client: TestClient) -> None:
    answer = client.post(
        "/api/v1/tickets",
        headers={"Authorization": "Bearer not-a-token"},
        json={"subject": "Hi", "body": "x", "requester": {"email": "a@example.org"}},
    )
    assert answer.status_code == 401
    assert answer.json()["code"] == "not_authenticated"


def test_concurrent_updates_run_one_at_a_time_and_all_land(
    db: Session, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Agents change tickets all day: PATCH runs in the lane too (authenticates, changes and
    # commits in one turn), so it never holds SQLite's write lock while waiting for a thread.
    headers = bearer_headers(db, make_user(db))
    opened = [make_ticket(db, subject=f"To change {number}") for number in range(5)]
    db.commit()
    overlap = _Overlap(monkeypatch, "update_ticket")

    async def update_at_once() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await asyncio.gather(
                *(
                    http.patch(f"/api/v1/tickets/{ticket.id}", headers=headers, json={"priority": "urgent"})
                    for ticket in opened
                )
            )

    answers = asyncio.run(update_at_once())
    assert [answer.status_code for answer in answers] == [200] * 5
    assert [answer.json()["priority"] for answer in answers] == ["urgent"] * 5
    assert overlap.most_inside == 1
    db.expire_all()
    assert {db.get_one(Ticket, ticket.id).priority for ticket in opened} == {"urgent"}


def test_a_refused_update_changes_nothing(db: Session, client: TestClient) -> None:
    headers = bearer_headers(db, make_user(db))
    ticket = make_ticket(db, subject="Stays as it is")
    db.commit()
    answer = client.patch(
        f"/api/v1/tickets/{ticket.id}", headers=headers, json={"priority": "urgent", "group_id": 999_999}
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    db.expire_all()
    assert db.get_one(Ticket, ticket.id).priority == "normal"
    assert client.patch(f"/api/v1/tickets/{ticket.id}", json={"priority": "low"}).status_code == 401
