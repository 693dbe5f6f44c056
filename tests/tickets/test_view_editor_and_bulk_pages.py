"""The view editor and the bulk bar through the real ASGI app, on SQLite and PostgreSQL: create,
preview, edit, share (leads/admins only), reorder and delete views from the pages; bulk changes on
a list with the result message; refusals that change nothing and say why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.auth.models import AuditEvent, User
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Ticket, View
from opsdesk.tickets.service import views as views_service
from tests.support.databases import BoundDatabase
from tests.support.factories import make_group, make_ticket, make_user, staff_actor
from tests.support.web import app_client, sign_in

PASSWORD = "correct horse battery"


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> Iterator[TestClient]:
    with app_client(database, tmp_path) as test_client:
        yield test_client


def _signed_in(client: TestClient, db: Session, role: str = "agent", **fields: Any) -> tuple[str, User]:
    user = make_user(db, role=role, password=PASSWORD, **fields)
    db.flush()
    return sign_in(client, user.email, PASSWORD), user


def _views_of(db: Session, owner_id: int | None) -> list[View]:
    db.expire_all()
    owner = View.owner_id.is_(None) if owner_id is None else View.owner_id == owner_id
    return list(db.scalars(select(View).where(owner).order_by(View.position, View.id)))


def _audit_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def test_create_a_personal_view_with_preview_and_readable_errors(client: TestClient, db: Session) -> None:
    csrf, agent = _signed_in(client, db)
    group = make_group(db)
    make_ticket(db, subject="Refund please", tags=["vip"], group_id=group.id, priority="high")
    make_ticket(db, subject="Other", tags=["vip"], priority="low")
    db.flush()
    form = client.get("/views/new")
    assert form.status_code == 200
    assert 'name="shared"' not in form.text  # agents cannot share views
    fields = {
        "csrf_token": csrf,
        "name": "VIP urgent-ish",
        "status": ["new", "open"],
        "priority": ["high", "urgent"],
        "group": str(group.id),
        "tag": "VIP",
        "assignee": "",
        "sort": "-created_at",
    }
    preview = client.post("/views/new", data={**fields, "action": "preview"})
    assert preview.status_code == 200
    assert "1 ticket matches" in preview.text
    assert _views_of(db, agent.id) == []  # a preview saves nothing

    before = _audit_count(db)
    bad = client.post(
        "/views/new", data={**fields, "name": "  ", "solved_within_days": "soon", "action": "save"}
    )
    assert bad.status_code == 422
    assert "Nothing was saved" in bad.text
    assert "must be a positive whole number" in bad.text
    assert 'value="VIP urgent-ish"' not in bad.text  # the blank name is shown as typed
    assert 'value="vip"' in bad.text or 'value="VIP"' in bad.text
    assert _views_of(db, agent.id) == []
    assert _audit_count(db) == before
    blank_name = client.post("/views/new", data={**fields, "name": " ", "action": "save"})
    assert blank_name.status_code == 422
    assert "must be 1 to 120 characters" in blank_name.text

    saved = client.post("/views/new", data={**fields, "action": "save"})
    assert saved.status_code == 303, saved.text
    [view] = _views_of(db, agent.id)
    assert view.filters == {
        "status": ["new", "open"],
        "priority": ["high", "urgent"],
        "group": str(group.id),
        "tag": ["vip"],
    }
    assert view.sort == "-created_at"
    listed = client.get(saved.headers["location"])
    assert "Refund please" in listed.text
    assert "Other" not in listed.text


def test_shared_views_only_for_leads_and_admins(client: TestClient, db: Session) -> None:
    views_service.ensure_default_views(db)
    csrf, _ = _signed_in(client, db, role="agent")
    shared = _views_of(db, None)[0]
    edit = client.get(f"/views/{shared.id}/edit")
    assert edit.status_code == 200
    assert "only leads and admins can change it" in edit.text
    assert 'action="/views/new"' in edit.text  # saving makes a copy of their own
    refused = client.post(
        f"/views/{shared.id}/edit", data={"csrf_token": csrf, "name": "Hijacked", "action": "save"}
    )
    assert refused.status_code == 403
    assert client.post(f"/views/{shared.id}/delete", data={"csrf_token": csrf}).status_code == 403
    assert _views_of(db, None)[0].name == shared.name
    shared_attempt = client.post(
        "/views/new", data={"csrf_token": csrf, "name": "Team", "shared": "on", "action": "save"}
    )
    assert shared_attempt.status_code == 403
    assert [view.name for view in _views_of(db, None)].count("Team") == 0


def test_a_lead_shares_edits_reorders_and_deletes(client: TestClient, db: Session) -> None:
    views_service.ensure_default_views(db)
    csrf, lead = _signed_in(client, db, role="lead")
    made = client.post(
        "/views/new",
        data={
            "csrf_token": csrf,
            "name": "Escalations",
            "shared": "on",
            "tier": "enterprise",
            "action": "save",
        },
    )
    assert made.status_code == 303, made.text
    shared = _views_of(db, None)
    assert shared[-1].name == "Escalations"
    assert shared[-1].filters == {"tier": ["enterprise"]}
    escalations = shared[-1].id

    edited = client.post(
        f"/views/{escalations}/edit",
        data={
            "csrf_token": csrf,
            "name": "Enterprise escalations",
            "shared": "on",
            "tier": ["enterprise", "business"],
            "assignee": "none",
            "channel": "email",
            "q": "outage",
            "sort": "created_at",
            "action": "save",
        },
    )
    assert edited.status_code == 303
    db.expire_all()
    view = db.get_one(View, escalations)
    assert view.name == "Enterprise escalations"
    assert view.filters == {
        "tier": ["enterprise", "business"],
        "assignee": "none",
        "channel": ["email"],
        "q": "outage",
    }
    # Up one place, then the manage page shows the new order.
    order_before = [item.id for item in _views_of(db, None)]
    moved = client.post(f"/views/{escalations}/move", data={"csrf_token": csrf, "direction": "up"})
    assert moved.status_code == 303
    order_after = [item.id for item in _views_of(db, None)]
    assert order_after == [*order_before[:-2], escalations, order_before[-2]]
    manage = client.get("/views/manage")
    names = re.findall(r'<a href="/views/\d+">([^<]+)</a>', manage.text)
    assert names.index("Enterprise escalations") < names.index(db.get_one(View, order_before[-2]).name)
    # Made personal again, then deleted.
    client.post(
        f"/views/{escalations}/edit",
        data={"csrf_token": csrf, "name": "Enterprise escalations", "action": "save"},
    )
    db.expire_all()
    assert db.get_one(View, escalations).owner_id == lead.id
    deleted = client.post(f"/views/{escalations}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303
    db.expire_all()
    assert db.get(View, escalations) is None


def test_bulk_bar_changes_the_selected_tickets_and_reports_refusals(client: TestClient, db: Session) -> None:
    views_service.ensure_default_views(db)
    csrf, agent = _signed_in(client, db)
    group = make_group(db)
    first, second = make_ticket(db, subject="First"), make_ticket(db, subject="Second")
    closed = make_ticket(db, subject="Done already")
    actor = staff_actor(agent)
    tickets.update_ticket(db, actor, closed, {"status": "solved"})
    tickets.update_ticket(db, actor, closed, {"status": "closed"})
    db.flush()
    all_unsolved = next(view for view in _views_of(db, None) if view.name == "All unsolved")
    listing = client.get(f"/views/{all_unsolved.id}")
    assert f'name="ids" value="{first.id}"' in listing.text
    assert "Apply to selected" in listing.text

    answer = client.post(
        f"/views/{all_unsolved.id}/bulk",
        data={
            "csrf_token": csrf,
            "ids": [str(first.id), str(second.id), str(closed.id)],
            "status": "pending",
            "priority": "urgent",
            "group_id": str(group.id),
            "assignee_id": str(agent.id),
            "add_tags": "callback, vip",
        },
    )
    assert answer.status_code == 200, answer.text
    assert "2 tickets changed; 1 ticket refused." in answer.text
    assert f"#{closed.id}: ticket {closed.id} is closed" in answer.text
    db.expire_all()
    for ticket_id in (first.id, second.id):
        ticket = db.get_one(Ticket, ticket_id)
        assert (ticket.status, ticket.priority, ticket.group_id, ticket.assignee_id) == (
            "pending",
            "urgent",
            group.id,
            agent.id,
        )
        assert ticket.tags == ["callback", "vip"]
    assert db.get_one(Ticket, closed.id).priority == "normal"

    removed = client.post(
        f"/views/{all_unsolved.id}/bulk",
        data={"csrf_token": csrf, "ids": [str(first.id)], "remove_tags": "vip", "assignee_id": "none"},
    )
    assert "1 ticket changed." in removed.text
    db.expire_all()
    assert db.get_one(Ticket, first.id).tags == ["callback"]
    assert db.get_one(Ticket, first.id).assignee_id is None


def test_bulk_bar_refuses_a_bad_form_as_a_whole(client: TestClient, db: Session) -> None:
    views_service.ensure_default_views(db)
    csrf, _ = _signed_in(client, db)
    ticket = make_ticket(db)
    db.flush()
    view = next(view for view in _views_of(db, None) if view.name == "All unsolved")
    before = _audit_count(db)
    nothing_selected = client.post(f"/views/{view.id}/bulk", data={"csrf_token": csrf, "priority": "high"})
    assert nothing_selected.status_code == 422
    assert "Nothing was changed" in nothing_selected.text
    assert "select at least one ticket" in nothing_selected.text
    no_change = client.post(f"/views/{view.id}/bulk", data={"csrf_token": csrf, "ids": str(ticket.id)})
    assert "choose at least one change" in no_change.text
    bad_group = client.post(
        f"/views/{view.id}/bulk", data={"csrf_token": csrf, "ids": str(ticket.id), "group_id": "987654"}
    )
    assert bad_group.status_code == 422
    assert "group 987654 does not exist" in bad_group.text
    still_selected = f'value="{ticket.id}" form="bulk-form" aria-label="Select ticket #{ticket.id}" checked'
    assert still_selected in bad_group.text
    forged = client.post(f"/views/{view.id}/bulk", data={"ids": str(ticket.id), "priority": "high"})
    assert forged.status_code == 403
    db.expire_all()
    assert db.get_one(Ticket, ticket.id).priority == "normal"
    assert _audit_count(db) == before


def test_no_bulk_bar_for_contractors_and_viewers(client: TestClient, db: Session) -> None:
    views_service.ensure_default_views(db)
    group = make_group(db)
    csrf, _ = _signed_in(client, db, role="contractor", groups=[group])
    ticket = make_ticket(db, group_id=group.id)
    db.flush()
    view = _views_of(db, None)[0]
    page = client.get(f"/views/{view.id}")
    assert page.status_code == 200
    assert "bulk-form" not in page.text
    refused = client.post(
        f"/views/{view.id}/bulk", data={"csrf_token": csrf, "ids": str(ticket.id), "priority": "high"}
    )
    assert refused.status_code == 403
    db.expire_all()
    assert db.get_one(Ticket, ticket.id).priority == "normal"


def test_preview_and_order_api(client: TestClient, db: Session) -> None:
    csrf, agent = _signed_in(client, db)
    make_ticket(db, tags=["vip"], priority="urgent")
    db.flush()
    counted = client.get("/api/v1/views/preview", params={"tag": "vip", "priority": ["urgent", "high"]})
    assert counted.status_code == 200
    assert counted.json() == {"count": 1, "filters": {"tag": ["vip"], "priority": ["urgent", "high"]}}
    bad = client.get("/api/v1/views/preview", params={"priority": "whenever", "assignee": "someone"})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert sorted(error["field"] for error in bad.json()["errors"]) == ["assignee", "priority"]
    headers = {"X-CSRF-Token": csrf}
    ids = [
        client.post("/api/v1/views", headers=headers, json={"name": name}).json()["id"]
        for name in ("A", "B", "C")
    ]
    ordered = client.put("/api/v1/views/order", headers=headers, json={"shared": False, "ids": ids[::-1]})
    assert ordered.status_code == 200, ordered.text
    assert [view.id for view in _views_of(db, agent.id)] == ids[::-1]
    incomplete = client.put("/api/v1/views/order", headers=headers, json={"shared": False, "ids": ids[:2]})
    assert incomplete.status_code == 422
    assert [view.id for view in _views_of(db, agent.id)] == ids[::-1]
    not_mine = client.put("/api/v1/views/order", headers=headers, json={"shared": True, "ids": []})
    assert not_mine.status_code == 403


def test_viewers_cannot_save_views(client: TestClient, db: Session) -> None:
    csrf, viewer = _signed_in(client, db, role="viewer")
    form = client.get("/views/new")
    assert form.status_code == 200
    assert "Your role can use views but not save them." in form.text
    assert 'value="save"' not in form.text
    refused = client.post("/views/new", data={"csrf_token": csrf, "name": "Mine", "action": "save"})
    assert refused.status_code == 403
    assert _views_of(db, viewer.id) == []


def test_the_message_endpoint_documents_json_and_multipart(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    content = spec["paths"]["/api/v1/tickets/{ticket_id}/messages"]["post"]["requestBody"]["content"]
    assert content["application/json"]["schema"]["required"] == ["body"]
    assert content["multipart/form-data"]["schema"]["properties"]["attachments"]["type"] == "array"
    references = set(re.findall(r"#/components/schemas/(\w+)", str(spec)))
    assert references <= set(spec["components"]["schemas"])
