"""Admin pages: the rule, macro and SLA policy editors refuse invalid input with a readable
message and save nothing; dead letters can be retried; the SLA views list due tickets."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.automation.models import AutomationRule, Macro
from opsdesk.outbox import OutboxJob, enqueue
from opsdesk.sla import policies
from opsdesk.sla.models import SlaPolicy
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_ticket, make_user
from tests.support.web import app_client, sign_in

PASSWORD = "correct horse battery"


def test_admin_editors_validate_before_saving(database: BoundDatabase, db: Session, tmp_path: Path) -> None:
    admin = make_user(db, role="admin", password=PASSWORD)
    policies.save_policy(db, SYSTEM, name="Everyone", conditions={}, targets={"first_reply": {"minutes": 30}})
    ticket = make_ticket(db, subject="Printer on fire")
    dead = enqueue(db, "http.post", {"url": "http://127.0.0.1:9/x"}, idempotency_key="dead-page-1")
    dead.status = "dead"
    dead.attempts = 10
    dead.last_error = "DeliveryError: nobody home"
    db.commit()
    client = app_client(database, tmp_path)
    token = sign_in(client, admin.email, PASSWORD)

    bad = client.post(
        "/admin/rules",
        data={
            "csrf_token": token,
            "name": "Broken",
            "kind": "trigger",
            "events": "created",
            "conditions": "{",
            "actions": "[]",
        },
    )
    assert bad.status_code == 422
    assert "conditions: not valid JSON" in bad.text
    invalid = client.post(
        "/admin/rules",
        data={
            "csrf_token": token,
            "name": "Broken",
            "kind": "trigger",
            "events": "created",
            "conditions": '{"all": []}',
            "actions": '[{"type": "launch"}]',
        },
    )
    assert invalid.status_code == 422
    assert "actions.0" in invalid.text
    assert db.scalar(select(func.count()).select_from(AutomationRule)) == 0
    good = client.post(
        "/admin/rules",
        data={
            "csrf_token": token,
            "name": "Tag VIP",
            "kind": "trigger",
            "events": "created",
            "conditions": '{"all": []}',
            "actions": '[{"type": "add_tags", "tags": ["vip"]}]',
        },
    )
    assert good.status_code == 303
    assert "Tag VIP" in client.get("/admin/rules").text

    refused = client.post(
        "/admin/macros", data={"csrf_token": token, "name": "Oops", "body_template": "{% if %}"}
    )
    assert refused.status_code == 422
    assert "body_template" in refused.text
    assert db.scalar(select(func.count()).select_from(Macro)) == 0
    saved = client.post(
        "/admin/macros",
        data={
            "csrf_token": token,
            "name": "Thanks",
            "shared": "true",
            "body_template": "Thanks {{ ticket.requester.first_name }}",
        },
    )
    assert saved.status_code == 303
    assert "Thanks" in client.get("/admin/macros").text

    policy_refused = client.post(
        "/admin/sla/policies",
        data={"csrf_token": token, "name": "Bad", "conditions": '{"priority": ["hot"]}', "targets": "{}"},
    )
    assert policy_refused.status_code == 422
    assert "conditions.priority" in policy_refused.text
    assert db.scalar(select(func.count()).select_from(SlaPolicy)) == 1

    views = client.get("/sla")
    assert views.status_code == 200
    assert "Printer on fire" in views.text  # due in 30 minutes
    assert f"#{ticket.id}" in views.text

    letters = client.get("/admin/jobs")
    assert "nobody home" in letters.text
    retried = client.post(f"/admin/jobs/{dead.id}/retry", data={"csrf_token": token})
    assert retried.status_code == 303
    db.expire_all()
    assert db.get_one(OutboxJob, dead.id).status == "pending"
