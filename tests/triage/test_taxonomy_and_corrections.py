"""The taxonomy editor (service, API, page), correcting a ticket's category (service, API, the
ticket page's form), the shipped "Needs triage" view with its live count, and bulk assignment
still running triggers and webhooks per ticket through the batched bus."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.auth.models import AuditEvent
from opsdesk.automation import rules as automation
from opsdesk.channels.models import WebhookDelivery
from opsdesk.channels.service import webhooks
from opsdesk.tickets.models import View
from opsdesk.tickets.service import views as views_service
from opsdesk.triage.errors import InvalidTaxonomyError, InvalidTriageSettingsError
from opsdesk.triage.models import KeywordRuleRow, TriageCategory, TriageSettings
from opsdesk.triage.seed import NEEDS_TRIAGE_VIEW, seed_defaults
from opsdesk.triage.service import assignment, classification, registry, routing, taxonomy
from opsdesk.triage.service.classification import prediction_for
from opsdesk.triage.service.settings import triage_settings, update_triage_settings
from tests.support.databases import BoundDatabase, recorded_statements
from tests.support.factories import SYSTEM, make_group, make_ticket, make_user, staff_actor
from tests.support.web import app_client, bearer_headers, sign_in

PASSWORD = "correct horse battery"
UNSURE = {"subject": "Hello", "body": "Something odd happened with the thing today."}


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> TestClient:
    return app_client(database, tmp_path)


def _category(db: Session, path: str) -> TriageCategory:
    found = db.scalar(select(TriageCategory).where(TriageCategory.path == path))
    assert found is not None
    return found


def _snapshot(db: Session) -> list[tuple[str, str, bool]]:
    db.expire_all()
    return [(row.path, row.label, row.is_active) for row in taxonomy.list_categories(db)]


# ---------------------------------------------------------------- taxonomy service


def test_rename_keeps_the_path_and_writes_the_audit_trail(db: Session) -> None:
    seed_defaults(db)
    admin = staff_actor(make_user(db, role="admin"))
    refund = _category(db, "billing/refund")
    taxonomy.rename_category(db, admin, refund.id, label="  Refund   request ")
    assert (refund.path, refund.label) == ("billing/refund", "Refund request")
    row = db.scalar(
        select(AuditEvent).where(AuditEvent.entity_type == "triage_category", AuditEvent.field == "label")
    )
    assert row is not None
    assert (row.old_value, row.new_value) == ("Refund", "Refund request")
    with pytest.raises(InvalidTaxonomyError) as empty:
        taxonomy.rename_category(db, admin, refund.id, label="   ")
    assert empty.value.fields[0].location == ("label",)
    with pytest.raises(InvalidTaxonomyError):  # a sibling already has that name
        taxonomy.rename_category(db, admin, refund.id, label="dispute")
    assert refund.label == "Refund request"


def test_retiring_is_refused_while_something_depends_on_the_category(db: Session) -> None:
    seed_defaults(db)
    admin = staff_actor(make_user(db, role="admin"))
    group = make_group(db, "Sales desk")
    routing.save_rule_set(
        db,
        admin,
        [
            {
                "name": "Sales leads",
                "conditions": [{"field": "category", "op": "equals", "value": "sales"}],
                "actions": {"group_id": group.id},
            }
        ],
    )
    before = _snapshot(db)
    with pytest.raises(InvalidTaxonomyError) as parent:
        taxonomy.update_category(db, admin, _category(db, "billing").id, label="Money", active=False)
    messages = [field.message for field in parent.value.fields]
    assert messages[0].startswith("retire its sub-categories first: billing/dispute, billing/invoice")
    assert any("keyword rule" in message for message in messages)
    with pytest.raises(InvalidTaxonomyError) as ruled:
        taxonomy.set_category_active(db, admin, _category(db, "sales").id, active=False)
    assert "routing rule 'Sales leads' names it" in ruled.value.fields[-1].message
    assert _snapshot(db) == before  # the rename in the refused edit did not happen either

    # a leaf with no rules retires; a retired parent keeps its children from coming back
    invoice = _category(db, "billing/invoice")
    for rule in db.scalars(select(KeywordRuleRow).where(KeywordRuleRow.category == "billing/invoice")):
        taxonomy.delete_keyword_rule(db, admin, rule.id)
    taxonomy.set_category_active(db, admin, invoice.id, active=False)
    assert "billing/invoice" not in taxonomy.category_paths(db)
    other = _category(db, "other")
    taxonomy.create_category(db, admin, path="other/press", label="Press")
    taxonomy.set_category_active(db, admin, _category(db, "other/press").id, active=False)
    taxonomy.set_category_active(db, admin, other.id, active=False)
    with pytest.raises(InvalidTaxonomyError) as orphan:
        taxonomy.set_category_active(db, admin, _category(db, "other/press").id, active=True)
    assert orphan.value.fields[0].message == "bring back 'other' first"
    taxonomy.set_category_active(db, admin, other.id, active=True)
    taxonomy.set_category_active(db, admin, _category(db, "other/press").id, active=True)
    assert {"other", "other/press"} <= taxonomy.category_paths(db)


def test_an_edit_checks_once_and_a_refused_one_changes_nothing(db: Session, database: BoundDatabase) -> None:
    seed_defaults(db)
    admin = staff_actor(make_user(db, role="admin"))
    taxonomy.create_category(db, admin, path="other/press", label="Press")
    press = _category(db, "other/press")
    taxonomy.set_category_active(db, admin, press.id, active=False)
    db.flush()
    with recorded_statements(database) as statements:
        taxonomy.update_category(db, admin, press.id, label="Press office", active=False)
    # the retired category stays retired: no blocker query; the label is checked once
    assert press.label == "Press office"
    assert sum("lower(triage_categories.label)" in statement for statement in statements) == 1

    taxonomy.set_category_active(db, admin, press.id, active=True)
    with recorded_statements(database) as statements:
        taxonomy.update_category(db, admin, press.id, label="Press desk", active=False)
    assert sum("FROM routing_rules" in statement for statement in statements) == 1
    assert sum("FROM triage_keyword_rules" in statement for statement in statements) == 1
    assert (press.label, press.is_active) == ("Press desk", False)

    # bringing a child back under a retired parent is refused, and its rename with it
    taxonomy.set_category_active(db, admin, _category(db, "other").id, active=False)
    before = _snapshot(db)
    with pytest.raises(InvalidTaxonomyError) as orphan:
        taxonomy.update_category(db, admin, press.id, label="Newsroom", active=True)
    assert orphan.value.fields[0].message == "bring back 'other' first"
    assert _snapshot(db) == before


def test_target_precision_as_typed_is_parsed_by_the_service(db: Session) -> None:
    admin = staff_actor(make_user(db, role="admin"))
    audit_rows = db.scalar(select(func.count()).select_from(AuditEvent))
    with pytest.raises(InvalidTriageSettingsError) as refused:
        update_triage_settings(db, admin, target_precision="high")
    assert [(field.location, field.message) for field in refused.value.fields] == [
        (("target_precision",), "must be a number such as 0.95")
    ]
    with pytest.raises(InvalidTriageSettingsError) as out_of_range:
        update_triage_settings(db, admin, target_precision="nan")
    assert out_of_range.value.fields[0].message == "must be between 0.5 and 0.999"
    assert db.scalar(select(func.count()).select_from(TriageSettings)) == 0
    assert db.scalar(select(func.count()).select_from(AuditEvent)) == audit_rows
    assert update_triage_settings(db, admin, target_precision=" 0.9 ").target_precision == 0.9


# ---------------------------------------------------------------- taxonomy API and page


def test_category_api_renames_retires_and_refuses_with_a_problem(db: Session, client: TestClient) -> None:
    seed_defaults(db)
    headers = bearer_headers(db, make_user(db, role="admin"))
    sso = _category(db, "account/sso")
    renamed = client.patch(
        f"/api/v1/triage/categories/{sso.id}", json={"label": "SSO / SAML"}, headers=headers
    )
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["label"], renamed.json()["is_active"]) == ("SSO / SAML", True)
    before = _snapshot(db)
    refused = client.patch(
        f"/api/v1/triage/categories/{_category(db, 'account').id}",
        json={"label": "Accounts", "is_active": False},
        headers=headers,
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "invalid_taxonomy"
    assert refused.json()["errors"][0]["field"] == "is_active"
    assert _snapshot(db) == before
    agent_headers = bearer_headers(db, make_user(db, role="agent"))
    forbidden = client.patch(
        f"/api/v1/triage/categories/{sso.id}", json={"label": "Mine"}, headers=agent_headers
    )
    assert forbidden.status_code == 403
    assert _snapshot(db) == before


def test_taxonomy_page_adds_renames_retires_and_shows_refusals(db: Session, client: TestClient) -> None:
    seed_defaults(db)
    admin = make_user(db, role="admin", password=PASSWORD)
    csrf = sign_in(client, admin.email, PASSWORD)
    page = client.get("/triage/taxonomy")
    assert page.status_code == 200
    assert "<code>billing/refund</code>" in page.text
    assert 'action="/triage/taxonomy/categories"' in page.text

    added = client.post(
        "/triage/taxonomy/categories", data={"csrf_token": csrf, "path": "billing/tax", "label": "Tax"}
    )
    assert added.status_code == 303
    assert "Added%20Tax" in added.headers["location"]
    assert _category(db, "billing/tax").label == "Tax"

    before = _snapshot(db)
    orphan = client.post(
        "/triage/taxonomy/categories", data={"csrf_token": csrf, "path": "shipping/late", "label": ""}
    )
    assert orphan.status_code == 422
    assert "Nothing was changed" in orphan.text
    assert "the parent category does not exist" in orphan.text
    assert 'value="shipping/late"' in orphan.text  # the form keeps what was typed
    billing = _category(db, "billing")
    blocked = client.post(
        f"/triage/taxonomy/categories/{billing.id}", data={"csrf_token": csrf, "action": "retire"}
    )
    assert blocked.status_code == 422
    assert "&#39;billing&#39; cannot be retired yet" in blocked.text
    assert "retire its sub-categories first" in blocked.text
    assert _snapshot(db) == before

    tax = _category(db, "billing/tax")
    renamed = client.post(
        f"/triage/taxonomy/categories/{tax.id}",
        data={"csrf_token": csrf, "action": "rename", "label": "Sales tax"},
    )
    assert renamed.status_code == 303
    retired = client.post(
        f"/triage/taxonomy/categories/{tax.id}", data={"csrf_token": csrf, "action": "retire"}
    )
    assert retired.status_code == 303
    db.expire_all()
    assert (tax.label, tax.is_active) == ("Sales tax", False)
    assert "Bring back" in client.get("/triage/taxonomy").text

    bad_precision = client.post(
        "/triage/taxonomy/precision", data={"csrf_token": csrf, "target_precision": "1.5"}
    )
    assert bad_precision.status_code == 422
    assert "target_precision: must be between 0.5 and 0.999" in bad_precision.text
    not_a_number = client.post(
        "/triage/taxonomy/precision", data={"csrf_token": csrf, "target_precision": "high"}
    )
    assert not_a_number.status_code == 422
    db.expire_all()
    assert triage_settings(db).target_precision == 0.95
    saved = client.post("/triage/taxonomy/precision", data={"csrf_token": csrf, "target_precision": "0.9"})
    assert saved.status_code == 303
    db.expire_all()
    assert triage_settings(db).target_precision == 0.9

    agent = make_user(db, role="agent", password=PASSWORD)
    client.cookies.clear()
    agent_client_csrf = sign_in(client, agent.email, PASSWORD)
    read_only = client.get("/triage/taxonomy")
    assert read_only.status_code == 200
    assert "Only admins edit the taxonomy" in read_only.text
    refused = client.post(
        f"/triage/taxonomy/categories/{tax.id}",
        data={"csrf_token": agent_client_csrf, "action": "restore"},
    )
    assert refused.status_code == 403
    db.expire_all()
    assert tax.is_active is False


# ---------------------------------------------------------------- corrections


def test_a_correction_is_audited_leaves_the_queue_and_becomes_training_data(db: Session) -> None:
    seed_defaults(db)
    agent = staff_actor(make_user(db, role="agent"))
    ticket = make_ticket(db, **UNSURE)
    assert ticket.tags == ["needs_triage"]
    with pytest.raises(InvalidTaxonomyError):
        classification.correct_category(db, agent, ticket.id, "shipping")
    assert ticket.category is None
    assert ticket.tags == ["needs_triage"]

    classification.correct_category(db, agent, ticket.id, "Bug")
    assert ticket.category == "bug"
    assert "needs_triage" not in ticket.tags
    prediction = prediction_for(db, ticket.id)
    assert prediction is not None
    assert (prediction.corrected_category, prediction.corrected_by_id) == ("bug", agent.user_id)
    changed = db.scalars(
        select(AuditEvent).where(AuditEvent.ticket_id == ticket.id, AuditEvent.field == "category")
    ).all()
    assert [(row.actor_id, row.new_value) for row in changed] == [(agent.user_id, "bug")]
    examples = {example.ticket_id: example.category for example in registry.training_examples(db)}
    assert examples[ticket.id] == "bug"


def test_correction_api_and_the_ticket_page_form(db: Session, client: TestClient) -> None:
    seed_defaults(db)
    agent = make_user(db, role="agent", password=PASSWORD)
    headers = bearer_headers(db, agent)
    first = make_ticket(db, **UNSURE)
    answer = client.post(
        f"/api/v1/triage/tickets/{first.id}/category", json={"category": "how_to"}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "ticket_id": first.id,
        "category": "how_to",
        "predicted": None,
        "corrected": True,
    }
    unknown = client.post(
        f"/api/v1/triage/tickets/{first.id}/category", json={"category": "weather"}, headers=headers
    )
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["errors"][0]["field"] == "category"
    db.expire_all()
    assert first.category == "how_to"
    missing = client.post("/api/v1/triage/tickets/999999/category", json={"category": "bug"}, headers=headers)
    assert missing.status_code == 404

    second = make_ticket(db, subject="Refund please", body="Please refund me, I want my money back")
    assert second.category == "billing/refund"
    csrf = sign_in(client, agent.email, PASSWORD)
    page = client.get(f"/tickets/{second.id}").text
    form = re.search(r'<form method="post" action="/triage/tickets/(\d+)/category".*?</form>', page, re.S)
    assert form is not None
    assert form.group(1) == str(second.id)
    assert '<option value="billing/refund" selected>' in form.group(0)
    assert "Correct the category" in form.group(0)

    saved = client.post(
        f"/triage/tickets/{second.id}/category", data={"csrf_token": csrf, "category": "billing/dispute"}
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/tickets/{second.id}#panel-triage"
    db.expire_all()
    assert second.category == "billing/dispute"
    panel = client.get(f"/tickets/{second.id}").text
    assert "corrected to billing/dispute" in panel
    refused = client.post(
        f"/triage/tickets/{second.id}/category", data={"csrf_token": csrf, "category": "nonsense"}
    )
    assert refused.status_code == 422
    assert "The category was not changed" in refused.text
    assert "&#39;nonsense&#39; is not an active category" in refused.text
    db.expire_all()
    assert second.category == "billing/dispute"
    forged = client.post(f"/triage/tickets/{second.id}/category", data={"category": "bug"})
    assert forged.status_code == 403
    db.expire_all()
    assert second.category == "billing/dispute"


# ---------------------------------------------------------------- the Needs triage view


def test_needs_triage_view_is_shipped_and_counts_hand_offs(db: Session, client: TestClient) -> None:
    seed_defaults(db)
    seed_defaults(db)  # idempotent: one view
    shipped = db.scalars(select(View).where(View.name == NEEDS_TRIAGE_VIEW.name)).all()
    assert len(shipped) == 1
    assert (shipped[0].owner_id, shipped[0].is_default) == (None, True)
    agent = make_user(db, role="agent", password=PASSWORD)
    actor = staff_actor(agent)
    handed_off = [make_ticket(db, **UNSURE) for _ in range(2)]
    make_ticket(db, subject="Refund", body="Please refund me, I want my money back")
    counts = {item.view.name: item.count for item in views_service.views_with_counts(db, actor)}
    assert counts["Needs triage"] == 2

    sign_in(client, agent.email, PASSWORD)
    page = client.get(f"/views/{shipped[0].id}")
    assert page.status_code == 200
    sidebar = dict(
        re.findall(r'<span class="view-name">([^<]+)</span> <span class="count"[^>]*>(\d+)</span>', page.text)
    )
    assert sidebar["Needs triage"] == "2"
    assert all(f"/tickets/{ticket.id}" in page.text for ticket in handed_off)

    classification.correct_category(db, actor, handed_off[0].id, "technical")
    counts = {item.view.name: item.count for item in views_service.views_with_counts(db, actor)}
    assert counts["Needs triage"] == 1


def test_the_first_category_of_a_hand_built_taxonomy_brings_the_view(db: Session) -> None:
    admin = staff_actor(make_user(db, role="admin"))
    assert db.scalar(select(View.id).where(View.name == NEEDS_TRIAGE_VIEW.name)) is None
    taxonomy.create_category(db, admin, path="orders")
    taxonomy.create_category(db, admin, path="returns")
    views = db.scalars(select(View).where(View.name == NEEDS_TRIAGE_VIEW.name)).all()
    assert [(view.filters, view.owner_id) for view in views] == [
        ({"status": ["unsolved"], "tag": ["needs_triage"]}, None)
    ]


# ---------------------------------------------------------------- bulk assignment through the batched bus


def test_bulk_assignment_still_runs_triggers_and_webhooks_per_ticket(db: Session) -> None:
    admin = staff_actor(make_user(db, role="admin"))
    group = make_group(db, "Support")
    agent = make_user(db, role="agent", groups=[group])
    agent.availability = "online"
    db.flush()
    queued = [make_ticket(db, subject=f"Queue {n}", group_id=group.id) for n in range(3)]
    assert all(ticket.assignee_id is None for ticket in queued)  # the group assigns by hand so far
    assignment.update_group_assignment(db, admin, group.id, mode="least_loaded")
    automation.save_rule(
        db,
        SYSTEM,
        name="Tag assigned",
        kind="trigger",
        events=["updated"],
        conditions={"all": [{"field": "group_id", "operator": "is", "value": group.id}]},
        actions=[{"type": "add_tags", "tags": ["assigned_in_bulk"]}],
    )
    webhooks.create_subscription(
        db, admin, url="https://hooks.example.org/opsdesk", events=["ticket.updated"]
    )
    deliveries_before = db.scalar(select(func.count()).select_from(WebhookDelivery)) or 0

    assert assignment.assign_backlog(db, SYSTEM, group.id) == 3
    db.expire_all()
    for ticket in queued:
        assert ticket.assignee_id == agent.id
        assert "assigned_in_bulk" in ticket.tags
    assert (db.scalar(select(func.count()).select_from(WebhookDelivery)) or 0) - deliveries_before >= 3
