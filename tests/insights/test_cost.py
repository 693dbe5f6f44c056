"""Cost to serve: loaded costs (service, API, admin page) and cost per ticket by segment, on the
known scenario week (t1 in-house 10 min, t2 Acme BPO 20 min, t3 unassigned 0, t4 in-house 30 min)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.auth.errors import PermissionDeniedError
from opsdesk.auth.models import AuditEvent
from opsdesk.insights.enums import Dimension
from opsdesk.insights.models import CostSetting
from opsdesk.insights.service import cost
from tests.insights.scenario import build
from tests.support.databases import BoundDatabase
from tests.support.factories import make_user, staff_actor
from tests.support.web import app_client, bearer_headers, sign_in

START, END = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC)
WEEK = {"from": "2026-11-02T00:00:00Z", "to": "2026-11-09T00:00:00Z"}
# 608,750 a month is exactly 140,000 for 7 days (a month is 365.25 / 12 days).
SETTINGS = {
    "currency": "USD",
    "in_house_hourly_minor": 6000,
    "vendor_hourly_minor": {"Acme BPO": 3000},
    "tooling_monthly_minor": 608_750,
}
PASSWORD = "correct horse battery staple"


def _admin(db: Session):
    return staff_actor(make_user(db, role="admin"))


def test_cost_per_ticket_overall_and_by_vendor(db: Session) -> None:
    build(db)
    lead = staff_actor(make_user(db, role="lead"))
    with pytest.raises(cost.CostSettingsMissingError):
        cost.cost_to_serve(db, lead, START, END)
    cost.save_cost_settings(db, _admin(db), **SETTINGS)  # type: ignore[arg-type]
    overall = cost.cost_to_serve(db, lead, START, END)
    assert overall.tooling_period_minor == 140_000
    assert overall.total is not None
    # Labour: t1 1/6 h and t4 1/2 h at 60.00, t2 1/3 h at 30.00 -> 10 + 30 + 10 = 50.00.
    assert (overall.total.tickets, overall.total.labour_minor, overall.total.tooling_minor) == (
        4,
        5000,
        140_000,
    )
    assert overall.total.per_ticket_minor == 36_250
    by_vendor = {row.key: row for row in cost.cost_to_serve(db, lead, START, END, Dimension.VENDOR).rows}
    assert set(by_vendor) == {"in-house", "Acme BPO", None}
    in_house, acme, unassigned = by_vendor["in-house"], by_vendor["Acme BPO"], by_vendor[None]
    assert (in_house.tickets, in_house.labour_minor, in_house.tooling_minor) == (2, 4000, 70_000)
    assert in_house.per_ticket_minor == 37_000
    assert (acme.tickets, acme.labour_minor, acme.per_ticket_minor) == (1, 1000, 36_000)
    assert (unassigned.label, unassigned.labour_minor, unassigned.per_ticket_minor) == (
        "(unassigned)",
        0,
        35_000,
    )
    assert cost.format_minor(in_house.per_ticket_minor, "USD") == "USD 370.00"


def test_a_vendor_without_a_rate_is_costed_in_house_and_named(db: Session) -> None:
    build(db)
    cost.save_cost_settings(db, _admin(db), **{**SETTINGS, "vendor_hourly_minor": {}})  # type: ignore[arg-type]
    result = cost.cost_to_serve(db, staff_actor(make_user(db, role="lead")), START, END, Dimension.VENDOR)
    assert result.missing_rates == ["Acme BPO"]
    assert {row.key: row.labour_minor for row in result.rows}["Acme BPO"] == 2000


def test_bad_or_unauthorised_settings_change_nothing(db: Session) -> None:
    admin = _admin(db)
    cost.save_cost_settings(db, admin, **SETTINGS)  # type: ignore[arg-type]
    before = cost.cost_settings(db, admin)
    events = db.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.entity_type == "cost_settings")
    )
    assert events == 1
    with pytest.raises(PermissionDeniedError):
        cost.save_cost_settings(db, staff_actor(make_user(db, role="lead")), **SETTINGS)  # type: ignore[arg-type]
    for bad in (
        {"currency": "XXQ"},
        {"in_house_hourly_minor": -1},
        {"vendor_hourly_minor": {" ": 100}},
        {"tooling_monthly_minor": 1.5},
    ):
        with pytest.raises(cost.InvalidCostSettingsError):
            cost.save_cost_settings(db, admin, **{**SETTINGS, **bad})  # type: ignore[arg-type]
    assert cost.cost_settings(db, admin) == before
    assert db.scalar(select(func.count()).select_from(CostSetting)) == 3
    assert (
        db.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.entity_type == "cost_settings")
        )
        == 1
    )


def test_cost_api_and_pages(database: BoundDatabase, tmp_path: Path) -> None:
    session = database.write_sessions()
    build(session)
    admin = make_user(session, role="admin", password=PASSWORD)
    lead_headers = bearer_headers(session, make_user(session, role="lead"))
    admin_headers = bearer_headers(session, admin)
    session.commit()
    client: TestClient = app_client(database, tmp_path)

    missing = client.get("/api/v1/insights/cost-to-serve", params=WEEK, headers=lead_headers)
    assert missing.status_code == 409
    assert missing.json()["code"] == "cost_settings_missing"
    refused = client.put("/api/v1/insights/cost-settings", json=SETTINGS, headers=lead_headers)
    assert refused.status_code == 403
    bad = client.put(
        "/api/v1/insights/cost-settings", json={**SETTINGS, "currency": "nope"}, headers=admin_headers
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/insights/cost-settings", headers=lead_headers).json()["configured"] is False
    saved = client.put("/api/v1/insights/cost-settings", json=SETTINGS, headers=admin_headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["vendor_hourly_minor"] == {"Acme BPO": 3000}
    answer = client.get(
        "/api/v1/insights/cost-to-serve", params={**WEEK, "by": "vendor"}, headers=lead_headers
    )
    assert answer.status_code == 200
    assert answer.json()["total"]["per_ticket_minor"] == 36_250
    assert {row["label"]: row["per_ticket_minor"] for row in answer.json()["rows"]}["Acme BPO"] == 36_000

    csrf = sign_in(client, admin.email, PASSWORD)
    page = client.get("/insights/cost", params={"from": "2026-11-02", "to": "2026-11-09", "by": "vendor"})
    assert page.status_code == 200
    assert "USD 362.50" in page.text
    assert "USD 370.00" in page.text
    form = client.get("/insights/cost/settings")
    assert 'name="vendor_rate" value="30.00"' in form.text
    rejected = client.post(
        "/insights/cost/settings",
        data={"csrf_token": csrf, "currency": "USD", "in_house": "-5", "tooling": "0"},
        follow_redirects=False,
    )
    assert rejected.status_code == 422
    assert "nothing was changed" in rejected.text
    assert (
        client.get("/api/v1/insights/cost-settings", headers=lead_headers).json()["in_house_hourly_minor"]
        == 6000
    )
    changed = client.post(
        "/insights/cost/settings",
        data={
            "csrf_token": csrf,
            "currency": "USD",
            "in_house": "72.50",
            "tooling": "6087.50",
            "vendor_name": ["Acme BPO"],
            "vendor_rate": ["31"],
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303
    after = client.get("/api/v1/insights/cost-settings", headers=lead_headers).json()
    assert (after["in_house_hourly_minor"], after["vendor_hourly_minor"]) == (7250, {"Acme BPO": 3100})
