"""The triage API and pages through the real ASGI app: problems on bad input (and nothing
changed), dry runs, predictions, accuracy, and the pages a lead uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from opsdesk.outbox import OutboxJob
from opsdesk.triage.models import RoutingRule, TriagePrediction
from opsdesk.triage.seed import seed_defaults
from tests.support.databases import BoundDatabase
from tests.support.factories import make_group, make_ticket, make_user
from tests.support.web import app_client, bearer_headers, sign_in

PASSWORD = "correct horse battery"


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> TestClient:
    return app_client(database, tmp_path)


def test_rule_set_api_refuses_bad_rules_and_changes_nothing(db: Session, client: TestClient) -> None:
    seed_defaults(db)
    group = make_group(db, "Billing")
    headers = bearer_headers(db, make_user(db, role="lead"))
    good = {
        "name": "Refunds",
        "conditions": [{"field": "category", "op": "under", "value": ["billing"]}],
        "actions": {"group_id": group.id, "priority": "high"},
    }
    saved = client.put("/api/v1/triage/routing-rules", json={"rules": [good]}, headers=headers)
    assert saved.status_code == 200, saved.text
    assert [rule["name"] for rule in saved.json()] == ["Refunds"]

    bad = {
        "name": "Hot",
        "conditions": [{"field": "account_is_hot", "op": "equals", "value": "yes"}],
        "actions": {"group_id": group.id},
    }
    refused = client.put(
        "/api/v1/triage/routing-rules", json={"rules": [good, dict(good, name="Again"), bad]}, headers=headers
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["code"] == "invalid_routing_rules"
    assert [(error["field"], error["code"]) for error in body["errors"]] == [
        ("rules.1", "unreachable"),
        ("rules.2.conditions.0.value", "wrong_type"),
    ]
    assert db.scalar(select(func.count()).select_from(RoutingRule)) == 1
    listed = client.get("/api/v1/triage/routing-rules", headers=headers).json()
    assert [rule["name"] for rule in listed] == ["Refunds"]

    ticket = make_ticket(db, subject="Refund", body="Please refund me, I want my money back")
    dry = client.post("/api/v1/triage/routing-rules/dry-run", json={"ticket_id": ticket.id}, headers=headers)
    assert dry.status_code == 200
    assert dry.json()["rule"] == "Refunds"
    assert dry.json()["actions"] == {"group_id": group.id, "priority": "high"}
    assert dry.json()["trace"][0]["matched"] is True
    missing = client.post("/api/v1/triage/routing-rules/dry-run", json={"ticket_id": 10**9}, headers=headers)
    assert missing.status_code == 404


def test_prediction_accuracy_settings_and_training_over_http(db: Session, client: TestClient) -> None:
    seed_defaults(db)
    admin_headers = bearer_headers(db, make_user(db, role="admin"))
    agent_headers = bearer_headers(db, make_user(db, role="agent"))
    ticket = make_ticket(db, subject="Refund", body="Please refund me, I want my money back")
    prediction = client.get(f"/api/v1/triage/tickets/{ticket.id}/prediction", headers=agent_headers)
    assert prediction.status_code == 200
    assert (prediction.json()["category"], prediction.json()["outcome"]) == ("billing/refund", "auto")
    assert prediction.json()["top_words"] == [["refund", 1.0], ["money back", 1.0]]

    report = client.get("/api/v1/triage/accuracy", headers=admin_headers)
    assert report.status_code == 200
    assert (report.json()["classified"], report.json()["auto"], report.json()["handoff_rate"]) == (1, 1, 0.0)
    assert client.get("/api/v1/triage/accuracy", headers=agent_headers).status_code == 403

    refused = client.patch("/api/v1/triage/settings", json={"target_precision": 1.5}, headers=admin_headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "target_precision"
    assert client.get("/api/v1/triage/settings", headers=agent_headers).json()["target_precision"] == 0.95
    changed = client.patch("/api/v1/triage/settings", json={"target_precision": 0.9}, headers=admin_headers)
    assert changed.json()["target_precision"] == 0.9

    queued = client.post("/api/v1/triage/models/train", json={}, headers=admin_headers)
    assert queued.status_code == 202
    assert db.scalar(select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == "triage.train")) == 1
    wrong_kind = client.post("/api/v1/triage/models/train", json={"kind": "magic"}, headers=admin_headers)
    assert wrong_kind.status_code == 422
    assert client.post("/api/v1/triage/models/rollback", headers=admin_headers).status_code == 409
    assert client.post("/api/v1/triage/models/train", json={}, headers=agent_headers).status_code == 403


def test_group_assignment_and_availability_over_http(db: Session, client: TestClient) -> None:
    group = make_group(db, "Tier 1")
    lead = make_user(db, role="lead")
    agent = make_user(db, role="agent", groups=[group])
    headers = bearer_headers(db, lead)
    put = client.put(
        f"/api/v1/triage/groups/{group.id}/assignment", json={"mode": "round_robin"}, headers=headers
    )
    assert put.json() == {
        "group_id": group.id,
        "mode": "round_robin",
        "senior_level": 2,
        "required_skills": [],
    }
    bad = client.put(
        f"/api/v1/triage/groups/{group.id}/assignment", json={"mode": "lottery"}, headers=headers
    )
    assert bad.status_code == 422
    assert (
        client.get(f"/api/v1/triage/groups/{group.id}/assignment", headers=headers).json()["mode"]
        == "round_robin"
    )
    online = client.put(
        f"/api/v1/triage/agents/{agent.id}/availability", json={"availability": "online"}, headers=headers
    )
    assert online.json() == {"user_id": agent.id, "availability": "online"}
    db.expire_all()  # the request changed the agent in its own session
    ticket = make_ticket(db, subject="Help", body="x y z", group_id=group.id)
    assert ticket.assignee_id == agent.id


def test_pages_show_accuracy_rules_and_the_ticket_panel(db: Session, client: TestClient) -> None:
    seed_defaults(db)
    lead = make_user(db, role="lead", password=PASSWORD)
    ticket = make_ticket(
        db, subject="Refund for INV-2210", body="Please refund the $30.00, I want my money back"
    )
    csrf = sign_in(client, lead.email, PASSWORD)
    accuracy = client.get("/triage")
    assert accuracy.status_code == 200
    assert "keyword rules (cold start)" in accuracy.text
    assert "billing/refund" in accuracy.text
    panel = client.get(f"/triage/tickets/{ticket.id}")
    assert panel.status_code == 200
    assert "set automatically" in panel.text
    assert "invoice number: INV-2210" in panel.text
    assert '<span class="badge">refund</span>' in panel.text
    ticket_page = client.get(f"/tickets/{ticket.id}")
    assert ticket_page.status_code == 200
    assert 'id="panel-triage"' in ticket_page.text
    assert "invoice number: INV-2210" in ticket_page.text
    unclassified = make_ticket(db, subject="Hello", body="Hello")
    db.execute(delete(TriagePrediction).where(TriagePrediction.ticket_id == unclassified.id))
    # triage is set up (there is a taxonomy): the panel says so and still lets a person set it
    unclassified_page = client.get(f"/tickets/{unclassified.id}").text
    assert "This ticket was not classified" in unclassified_page
    assert f'action="/triage/tickets/{unclassified.id}/category"' in unclassified_page

    refused = client.post(
        "/triage/rules",
        data={
            "rules": '[{"name": "X", "conditions": [{"field": "nope", '
            '"op": "equals", "value": 1}], "actions": {}}]',
            "csrf_token": csrf,
        },
    )
    assert refused.status_code == 422
    assert "rules.0.conditions.0.field: unknown field &#39;nope&#39;" in refused.text
    assert db.scalar(select(func.count()).select_from(RoutingRule)) == 0
    not_json = client.post("/triage/rules", data={"rules": "{oops", "csrf_token": csrf})
    assert not_json.status_code == 422
    assert "not valid JSON" in not_json.text
    saved = client.post(
        "/triage/rules",
        data={
            "rules": '[{"name": "Chat", "conditions": [{"field": "channel", "op": "equals", '
            '"value": "chat"}], "actions": {"priority": "high"}}]',
            "csrf_token": csrf,
        },
    )
    assert saved.status_code == 303
    rules = client.get(f"/triage/rules?ticket_id={ticket.id}")
    assert "Chat" in rules.text
    assert "no routing rule matched" in rules.text
    assert client.get("/triage", follow_redirects=False).status_code == 200
