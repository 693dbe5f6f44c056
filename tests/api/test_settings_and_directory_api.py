"""People, accounts, staff, groups, views, custom fields and statuses over HTTP: shapes, rules and
refusals that change nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.tickets.models import Account, Person
from tests.support.factories import make_ticket, make_user
from tests.support.web import bearer_headers


def _count(db: Session, model: type) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_people_crud_and_duplicate_email(db: Session, client: TestClient) -> None:
    headers = bearer_headers(db, make_user(db, role="agent"))
    created = client.post(
        "/api/v1/people",
        headers=headers,
        json={
            "name": "Ana Lima",
            "emails": ["Ana@Lima.test", "ana.l@other.test"],
            "external_ids": {"stripe": "cus_1"},
        },
    )
    assert created.status_code == 201, created.text
    person = created.json()
    assert person["email"] == "ana@lima.test"
    assert person["emails"] == ["ana@lima.test", "ana.l@other.test"]
    assert person["external_ids"] == {"stripe": "cus_1"}
    before = _count(db, Person)
    duplicate = client.post("/api/v1/people", headers=headers, json={"emails": ["ana@lima.test", "bad"]})
    assert duplicate.status_code == 422
    assert {error["field"] for error in duplicate.json()["errors"]} == {"emails.0", "emails.1"}
    assert _count(db, Person) == before
    patched = client.patch(
        f"/api/v1/people/{person['id']}", headers=headers, json={"time_zone": "Europe/Lisbon"}
    )
    assert patched.json()["time_zone"] == "Europe/Lisbon"
    assert (
        client.patch(
            f"/api/v1/people/{person['id']}", headers=headers, json={"time_zone": "Mars/Base"}
        ).status_code
        == 422
    )
    found = client.get("/api/v1/people", headers=headers, params={"q": "lima"}).json()["items"]
    assert [item["id"] for item in found] == [person["id"]]
    assert client.delete(f"/api/v1/people/{person['id']}", headers=headers).status_code == 204
    requester = make_ticket(db).requester
    assert client.delete(f"/api/v1/people/{requester.id}", headers=headers).status_code == 409


def test_accounts_money_domains_and_pagination(db: Session, client: TestClient) -> None:
    headers = bearer_headers(db, make_user(db, role="csm"))
    first = client.post(
        "/api/v1/accounts",
        headers=headers,
        json={
            "name": "Globex",
            "tier": "enterprise",
            "mrr_amount_minor": 1_250_000,
            "currency": "eur",
            "domains": ["globex.test"],
        },
    )
    assert first.status_code == 201, first.text
    assert (first.json()["currency"], first.json()["domains"]) == ("EUR", ["globex.test"])
    before = _count(db, Account)
    clash = client.post(
        "/api/v1/accounts",
        headers=headers,
        json={"name": "Copy", "domains": ["GLOBEX.test"], "currency": "XXQ"},
    )
    assert clash.status_code == 422
    assert {error["field"] for error in clash.json()["errors"]} == {"domains", "currency"}
    assert _count(db, Account) == before
    for number in range(3):
        client.post("/api/v1/accounts", headers=headers, json={"name": f"Page {number}"})
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2, "q": "page"}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/accounts", headers=headers, params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 3
    assert seen == sorted(seen)


def test_views_validate_filters_and_count_live(db: Session, client: TestClient) -> None:
    agent = make_user(db, role="agent")
    headers = bearer_headers(db, agent)
    bad = client.post(
        "/api/v1/views",
        headers=headers,
        json={"name": "Bad", "filters": {"status": ["lost"], "colour": "red"}},
    )
    assert bad.status_code == 422
    assert {error["field"] for error in bad.json()["errors"]} == {"status", "colour"}
    view = client.post(
        "/api/v1/views",
        headers=headers,
        json={"name": "My urgent", "filters": {"priority": ["urgent"], "assignee": "me"}},
    ).json()
    make_ticket(db, priority="urgent", assignee_id=agent.id)
    make_ticket(db, priority="urgent")
    listed = {item["name"]: item for item in client.get("/api/v1/views", headers=headers).json()}
    assert {"My open", "Unassigned", "All unsolved", "Recently solved", "My urgent"} <= set(listed)
    assert listed["My urgent"]["count"] == 1
    assert listed["My urgent"]["shared"] is False
    tickets = client.get(f"/api/v1/views/{view['id']}/tickets", headers=headers).json()
    assert len(tickets["items"]) == 1
    other = bearer_headers(db, make_user(db, role="agent"))
    assert client.get(f"/api/v1/views/{view['id']}", headers=other).status_code == 404
    refused = client.post("/api/v1/views", headers=headers, json={"name": "Team", "shared": True})
    assert refused.status_code == 403


def test_custom_fields_and_statuses_drive_ticket_validation(db: Session, client: TestClient) -> None:
    admin = bearer_headers(db, make_user(db, role="admin"))
    field = client.post(
        "/api/v1/custom-fields",
        headers=admin,
        json={"key": "plan", "label": "Plan", "field_type": "dropdown", "options": ["free", "pro"]},
    )
    assert field.status_code == 201, field.text
    status = client.post(
        "/api/v1/statuses", headers=admin, json={"name": "Waiting on engineering", "category": "on_hold"}
    )
    assert status.status_code == 201
    ticket = make_ticket(db)
    wrong = client.patch(
        f"/api/v1/tickets/{ticket.id}", headers=admin, json={"custom_fields": {"plan": "gold"}}
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "custom_fields.plan"
    right = client.patch(
        f"/api/v1/tickets/{ticket.id}",
        headers=admin,
        json={"custom_fields": {"plan": "pro"}, "status": "Waiting on engineering"},
    )
    assert right.status_code == 200, right.text
    assert (right.json()["status"], right.json()["status_name"]) == ("on_hold", "Waiting on engineering")
    assert (
        client.patch(
            f"/api/v1/custom-fields/{field.json()['id']}", headers=admin, json={"field_type": "text"}
        ).status_code
        == 422
    )
    assert client.delete(f"/api/v1/statuses/{status.json()['id']}", headers=admin).status_code == 204
    retired = client.patch(
        f"/api/v1/tickets/{make_ticket(db).id}", headers=admin, json={"status": "Waiting on engineering"}
    )
    assert retired.status_code == 422


def test_deactivated_user_loses_access_and_groups_have_members(db: Session, client: TestClient) -> None:
    admin = bearer_headers(db, make_user(db, role="admin"))
    agent = make_user(db, role="agent")
    agent_headers = bearer_headers(db, agent)
    group = client.post("/api/v1/groups", headers=admin, json={"name": "Tier 2", "member_ids": [agent.id]})
    assert group.status_code == 201, group.text
    assert group.json()["member_ids"] == [agent.id]
    assert client.get(f"/api/v1/users/{agent.id}", headers=admin).json()["group_ids"] == [group.json()["id"]]
    assert client.get("/api/v1/me", headers=agent_headers).status_code == 200
    assert client.delete(f"/api/v1/users/{agent.id}", headers=admin).status_code == 204
    assert client.get("/api/v1/me", headers=agent_headers).status_code == 401
    me = client.get("/api/v1/me", headers=admin).json()
    assert (
        client.patch(f"/api/v1/users/{me['id']}", headers=admin, json={"is_active": False}).status_code == 422
    )
