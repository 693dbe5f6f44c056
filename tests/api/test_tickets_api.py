"""The ticket API's fixed shapes, filters, pagination, messages, audit trail and bulk changes."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.auth.models import AuditEvent
from opsdesk.tickets.models import Ticket
from tests.support.factories import make_account, make_group, make_ticket, make_user
from tests.support.web import bearer_headers


def _count(db: Session, model: type) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_create_ticket_answers_201_with_the_ticket(db: Session, client: TestClient) -> None:
    make_account(db, name="Acme", domain="acme.test")
    headers = bearer_headers(db, make_user(db, role="agent"))
    answer = client.post(
        "/api/v1/tickets",
        headers=headers,
        json={
            "subject": "Refund for March",
            "body": "I was charged twice.",
            "requester": {"email": "Jo@Acme.test", "name": "Jo Doe"},
            "priority": "high",
            "tags": ["Billing", "refund"],
        },
    )
    assert answer.status_code == 201, answer.text
    ticket = answer.json()
    assert ticket["status"] == "new"
    assert ticket["priority"] == "high"
    assert ticket["tags"] == ["billing", "refund"]
    assert ticket["requester"]["email"] == "jo@acme.test"
    assert ticket["account"]["name"] == "Acme"
    assert ticket["channel"] == "api"
    assert answer.headers["location"] == f"/api/v1/tickets/{ticket['id']}"
    again = client.get(f"/api/v1/tickets/{ticket['id']}", headers=headers)
    assert again.json()["subject"] == "Refund for March"
    trail = client.get(f"/api/v1/tickets/{ticket['id']}/events", headers=headers).json()
    assert [event["action"] for event in trail] == ["created"]
    assert trail[0]["actor"]["kind"] == "api_token"
    assert trail[0]["via"] == "api"


def test_bad_ticket_lists_every_bad_field_and_creates_nothing(db: Session, client: TestClient) -> None:
    headers = bearer_headers(db, make_user(db))
    before = _count(db, Ticket)
    answer = client.post(
        "/api/v1/tickets",
        headers=headers,
        json={
            "subject": "Hi",
            "body": "x",
            "requester": {"email": "a@b.test"},
            "priority": "extreme",
            "bogus": 1,
        },
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    fields = {error["field"] for error in answer.json()["errors"]}
    assert fields == {"priority", "bogus"}
    blank = client.post(
        "/api/v1/tickets", headers=headers, json={"subject": "  ", "body": "", "requester": {"email": "nope"}}
    )
    assert blank.status_code == 422
    assert {error["field"] for error in blank.json()["errors"]} >= {"subject", "body"}
    assert _count(db, Ticket) == before


def test_patch_changes_fields_and_writes_the_trail(db: Session, client: TestClient) -> None:
    group = make_group(db, "Billing")
    agent = make_user(db, groups=[group])
    headers = bearer_headers(db, agent)
    ticket = make_ticket(db)
    answer = client.patch(
        f"/api/v1/tickets/{ticket.id}",
        headers=headers,
        json={"status": "pending", "group_id": group.id, "assignee_id": agent.id, "add_tags": ["vip"]},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["group"]["name"], body["assignee"]["id"], body["tags"]) == (
        "pending",
        "Billing",
        agent.id,
        ["vip"],
    )
    events = client.get(f"/api/v1/tickets/{ticket.id}/events", headers=headers).json()
    changed = {
        event["field"]: (event["old"], event["new"]) for event in events if event["action"] == "updated"
    }
    assert changed["status"] == ("new", "pending")
    assert changed["assignee_id"] == (None, agent.id)
    refused = client.patch(f"/api/v1/tickets/{ticket.id}", headers=headers, json={"status": None})
    assert refused.status_code == 422


def test_messages_reply_and_note(db: Session, client: TestClient) -> None:
    agent = make_user(db, name="Ann Agent")
    headers = bearer_headers(db, agent)
    ticket = make_ticket(db, body="Help please")
    reply = client.post(
        f"/api/v1/tickets/{ticket.id}/messages", headers=headers, json={"body": "On it", "public": True}
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["author"] == {"kind": "staff", "id": agent.id, "name": "Ann Agent"}
    note = client.post(
        f"/api/v1/tickets/{ticket.id}/messages", headers=headers, json={"body": "Check logs", "public": False}
    )
    assert note.json()["public"] is False
    messages = client.get(f"/api/v1/tickets/{ticket.id}/messages", headers=headers).json()
    assert [(message["body"], message["public"]) for message in messages] == [
        ("Help please", True),
        ("On it", True),
        ("Check logs", False),
    ]
    assert client.get(f"/api/v1/tickets/{ticket.id}", headers=headers).json()["status"] == "open"


def test_list_filters_and_cursor_pagination(db: Session, client: TestClient) -> None:
    group = make_group(db)
    agent = make_user(db, groups=[group])
    headers = bearer_headers(db, agent)
    mine = [
        make_ticket(db, subject=f"Mine {number}", group_id=group.id, assignee_id=agent.id)
        for number in range(5)
    ]
    unassigned = make_ticket(db, subject="Nobody's", tags=["vip"], priority="urgent")
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"assignee": "me", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/tickets", headers=headers, params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted((ticket.id for ticket in mine), reverse=True)

    none = client.get("/api/v1/tickets", headers=headers, params={"assignee": "none", "tag": "vip"}).json()
    assert [item["id"] for item in none["items"]] == [unassigned.id]
    by_group = client.get(
        "/api/v1/tickets",
        headers=headers,
        params={"group": group.id, "status": ["new", "open"], "limit": 200},
    ).json()
    assert {item["id"] for item in by_group["items"]} == {ticket.id for ticket in mine}
    urgent = client.get("/api/v1/tickets", headers=headers, params={"priority": "urgent"}).json()
    assert unassigned.id in [item["id"] for item in urgent["items"]]
    bad = client.get("/api/v1/tickets", headers=headers, params={"status": "lost", "assignee": "him"})
    assert bad.status_code == 422
    assert {error["field"] for error in bad.json()["errors"]} == {"status", "assignee"}
    assert client.get("/api/v1/tickets", headers=headers, params={"cursor": "garbage"}).status_code == 422


def test_keyword_search_finds_words_in_subject_and_messages(db: Session, client: TestClient) -> None:
    agent = make_user(db)
    headers = bearer_headers(db, agent)
    invoice = make_ticket(db, subject="Invoice question", body="Where is my invoice for the Zephyrine plan?")
    other = make_ticket(db, subject="Login broken", body="Password reset does not arrive")
    client.post(
        f"/api/v1/tickets/{other.id}/messages",
        headers=headers,
        json={"body": "Quarantined by the spamfilter"},
    )

    def ids(query: str) -> list[int]:
        answer = client.get("/api/v1/tickets", headers=headers, params={"q": query})
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    assert ids("zephyrine") == [invoice.id]
    assert ids("invoices zephyrine") == [invoice.id]  # stemming: invoices ~ invoice
    assert ids("spamfilter password") == [other.id]  # words from two different messages
    assert ids("zephyrine spamfilter") == []
    assert ids('"); DROP TABLE tickets; --') == []
    db.execute(select(Ticket.id).where(Ticket.id == invoice.id))
    client.patch(f"/api/v1/tickets/{invoice.id}", headers=headers, json={"subject": "Billing Kumquat"})
    assert ids("kumquat") == [invoice.id]


def test_bulk_update_per_ticket_and_atomic(db: Session, client: TestClient) -> None:
    agent = make_user(db, role="agent")
    headers = bearer_headers(db, agent)
    first, second = make_ticket(db), make_ticket(db)
    done = client.post(
        "/api/v1/tickets/bulk",
        headers=headers,
        json={"ids": [first.id, second.id], "changes": {"priority": "high", "add_tags": ["batch"]}},
    )
    assert done.status_code == 200, done.text
    assert done.json() == {"updated_ids": [first.id, second.id], "unchanged_ids": [], "refused": []}
    # Per ticket (the default): the unknown id is refused with its reason, the other is changed.
    partly = client.post(
        "/api/v1/tickets/bulk",
        headers=headers,
        json={"ids": [first.id, 987654321], "changes": {"priority": "urgent"}},
    )
    assert partly.status_code == 200, partly.text
    assert partly.json()["updated_ids"] == [first.id]
    assert [(item["id"], item["code"], item["status"]) for item in partly.json()["refused"]] == [
        (987654321, "ticket_not_found", 404)
    ]
    events_before = _count(db, AuditEvent)
    refused = client.post(
        "/api/v1/tickets/bulk",
        headers=headers,
        json={"ids": [second.id, 987654321], "changes": {"priority": "low"}, "atomic": True},
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "bulk_refused"
    assert refused.json()["errors"][0]["location"] == ["tickets", 987654321]
    bad = client.post(
        "/api/v1/tickets/bulk",
        headers=headers,
        json={"ids": [second.id], "changes": {"group_id": 987654}},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in bad.json()["errors"]] == ["changes.group_id"]
    db.expire_all()
    assert db.get(Ticket, first.id).priority == "urgent"  # type: ignore[union-attr]
    assert db.get(Ticket, second.id).priority == "high"  # type: ignore[union-attr]
    assert _count(db, AuditEvent) == events_before


def test_merge_moves_messages(db: Session, client: TestClient) -> None:
    headers = bearer_headers(db, make_user(db, role="lead"))
    source, target = make_ticket(db, body="from source"), make_ticket(db, body="from target")
    answer = client.post(f"/api/v1/tickets/{source.id}/merge", headers=headers, json={"into_id": target.id})
    assert answer.status_code == 200, answer.text
    bodies = [
        message["body"]
        for message in client.get(f"/api/v1/tickets/{target.id}/messages", headers=headers).json()
    ]
    assert "from source" in bodies
    assert client.get(f"/api/v1/tickets/{source.id}", headers=headers).json()["status"] == "closed"
