"""The escalation matrix editor (priority x tier, stages, who is notified, on-call paging) and its
API: validated before saving, readable refusals that change nothing, edit keeps the stored
routing key, delete; on SQLite and PostgreSQL."""

from __future__ import annotations

import html
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.automation.models import EscalationRule
from tests.support.databases import BoundDatabase
from tests.support.factories import make_user
from tests.support.web import app_client, bearer_headers, sign_in

PASSWORD = "correct horse battery"


def row_form(token: str, **values: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "rule_id": "",
        "priority": "urgent",
        "tier": "enterprise",
        "minutes_after_breach": "0",
        "notify": "group, oncall-lead@example.com",
        "slack_webhook_url": "",
        "page_on_call": "true",
        "paging_url": "https://events.pagerduty.com/v2/enqueue",
        "paging_routing_key": "R0UTINGKEY",
        "is_active": "true",
    } | values


def test_escalation_editor_validates_saves_edits_and_deletes(
    database: BoundDatabase, db: Session, tmp_path: Path
) -> None:
    admin = make_user(db, role="admin", password=PASSWORD)
    agent = make_user(db, role="agent", password=PASSWORD)
    db.commit()
    client = app_client(database, tmp_path)
    token = sign_in(client, admin.email, PASSWORD)

    refusals = [
        (row_form(token, minutes_after_breach="soon"), "minutes_after_breach: a whole number of minutes"),
        (row_form(token, priority="critical"), "priority: low, normal, high or urgent"),
        (row_form(token, tier="galactic"), "tier: one of"),
        (row_form(token, notify="the boss"), "notify.0: assignee, group or an email address"),
        (
            row_form(token, paging_routing_key=""),
            "paging_url: paging needs the Events API URL and a routing key",
        ),
        (row_form(token, notify="", page_on_call=""), "notify: say who is notified"),
        (row_form(token, slack_webhook_url="ftp://x"), "slack_webhook_url: an http(s) URL"),
    ]
    for data, message in refusals:
        refused = client.post("/admin/escalations", data=data)
        assert refused.status_code == 422, message
        assert "The row was not saved" in refused.text
        assert message in html.unescape(refused.text), message
    assert db.scalar(select(func.count()).select_from(EscalationRule)) == 0

    assert client.post("/admin/escalations", data=row_form(token), follow_redirects=False).status_code == 303
    later = row_form(
        token, tier="", minutes_after_breach="60", notify="assignee", page_on_call="", paging_routing_key=""
    )
    assert client.post("/admin/escalations", data=later, follow_redirects=False).status_code == 303
    rows = db.scalars(select(EscalationRule).order_by(EscalationRule.id)).all()
    assert [
        (row.priority, row.tier, row.minutes_after_breach, row.notify, row.page_on_call) for row in rows
    ] == [
        ("urgent", "enterprise", 0, ["group", "oncall-lead@example.com"], True),
        ("urgent", None, 60, ["assignee"], False),
    ]
    assert rows[0].paging_routing_key == "R0UTINGKEY"

    matrix = html.unescape(client.get("/admin/escalations").text)
    assert "At breach" in matrix
    assert "1 h after breach" in matrix
    assert "pages on-call" in matrix
    assert "R0UTINGKEY" not in matrix  # the key is never shown
    edit_page = client.get(f"/admin/escalations?edit={rows[0].id}").text
    assert "stored; leave blank to keep it" in edit_page
    edited = client.post(
        "/admin/escalations",
        data=row_form(token, rule_id=str(rows[0].id), minutes_after_breach="15", paging_routing_key=""),
        follow_redirects=False,
    )
    assert edited.status_code == 303
    db.expire_all()
    first = db.get_one(EscalationRule, rows[0].id)
    assert (first.minutes_after_breach, first.paging_routing_key) == (15, "R0UTINGKEY")

    deleted = client.post(
        f"/admin/escalations/{rows[1].id}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert deleted.status_code == 303
    assert db.scalar(select(func.count()).select_from(EscalationRule)) == 1

    agent_client = app_client(database, tmp_path)
    agent_token = sign_in(agent_client, agent.email, PASSWORD)
    assert agent_client.post("/admin/escalations", data=row_form(agent_token)).status_code == 403
    assert db.scalar(select(func.count()).select_from(EscalationRule)) == 1


def test_escalation_api_replaces_and_deletes(database: BoundDatabase, db: Session, tmp_path: Path) -> None:
    admin = make_user(db, role="admin")
    headers = bearer_headers(db, admin)
    db.commit()
    client = app_client(database, tmp_path)
    made = client.post(
        "/api/v1/escalations",
        json={"priority": "high", "tier": None, "notify": ["assignee"]},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    rule_id = made.json()["id"]
    bad = client.put(
        f"/api/v1/escalations/{rule_id}", json={"priority": "high", "notify": ["nobody"]}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/escalations", headers=headers).json()[0]["notify"] == ["assignee"]
    replaced = client.put(
        f"/api/v1/escalations/{rule_id}",
        json={"priority": "high", "notify": ["group"], "minutes_after_breach": 30, "is_active": False},
        headers=headers,
    )
    assert replaced.status_code == 200
    assert (replaced.json()["notify"], replaced.json()["is_active"]) == (["group"], False)
    assert client.delete(f"/api/v1/escalations/{rule_id}", headers=headers).status_code == 204
    assert client.delete(f"/api/v1/escalations/{rule_id}", headers=headers).status_code == 404
    assert client.get("/api/v1/escalations", headers=headers).json() == []
