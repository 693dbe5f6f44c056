"""The metrics API through the real ASGI app: series, drill-down, exports, report, errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from tests.insights.scenario import build
from tests.support.databases import BoundDatabase
from tests.support.factories import make_user
from tests.support.web import app_client, bearer_headers

WEEK = {"from": "2026-11-02T00:00:00Z", "to": "2026-11-09T00:00:00Z"}


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> TestClient:
    return app_client(database, tmp_path)


@pytest.fixture
def session(database: BoundDatabase) -> Session:
    return database.write_sessions()


def test_series_by_group_with_counts_percentiles_and_links(client: TestClient, session: Session) -> None:
    scenario = build(session)
    headers = bearer_headers(session, make_user(session, role="lead"))
    session.commit()
    answer = client.get(
        "/api/v1/metrics",
        params={"metric": "first_reply_time", "by": "group", "grain": "week", **WEEK},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "duration"
    by_label = {point["label"]: point for point in body["points"]}
    group_a = by_label[scenario.group_a.name]
    assert (group_a["count"], group_a["bucket"]) == (2, "2026-11-02T00:00")
    assert group_a["p50"] == pytest.approx(5400, abs=0.01)  # 1h and 2h
    drill = client.get(
        group_a["tickets_url"].replace("/insights/tickets", "/api/v1/metrics/tickets"), headers=headers
    )
    assert drill.status_code == 200, drill.text
    assert {item["id"] for item in drill.json()["items"]} == {scenario.t1.id, scenario.t4.id}
    filtered = client.get(
        "/api/v1/metrics", params={"metric": "tickets_created", "channel": "email", **WEEK}, headers=headers
    )
    assert [point["count"] for point in filtered.json()["points"]] == [3]


def test_exports_csv_and_xlsx(client: TestClient, session: Session) -> None:
    build(session)
    headers = bearer_headers(session, make_user(session, role="lead"))
    session.commit()
    csv_answer = client.get(
        "/api/v1/metrics",
        params={"metric": "tickets_created", "by": "channel", "format": "csv", **WEEK},
        headers=headers,
    )
    assert csv_answer.headers["content-type"].startswith("text/csv")
    lines = csv_answer.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "bucket,key,label,tickets,value,mean,p50,p90"
    assert ",email,email,3,3.0," in lines[1]
    xlsx_answer = client.get(
        "/api/v1/metrics/tickets",
        params={"metric": "tickets_created", "format": "xlsx", **WEEK},
        headers=headers,
    )
    sheet = load_workbook(io.BytesIO(xlsx_answer.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("id", "subject", "status")
    assert len(rows) == 6


def test_bad_requests_are_problems(client: TestClient, session: Session) -> None:
    headers = bearer_headers(session, make_user(session, role="lead"))
    agent_headers = bearer_headers(session, make_user(session, role="agent"))
    session.commit()
    unknown = client.get("/api/v1/metrics", params={"metric": "mood", **WEEK}, headers=headers)
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert unknown.json()["code"] == "invalid_metric_query"
    bad_grain = client.get(
        "/api/v1/metrics", params={"metric": "csat", "grain": "year", **WEEK}, headers=headers
    )
    assert bad_grain.status_code == 422
    for metric, domain in (("nps", "success"), ("deflection_rate", "knowledge"), ("mttr", "incidents")):
        for path in ("/api/v1/metrics", "/api/v1/metrics/tickets"):
            unavailable = client.get(path, params={"metric": metric, **WEEK}, headers=headers)
            assert unavailable.status_code == 409
            assert unavailable.headers["content-type"].startswith("application/problem+json")
            assert unavailable.json()["code"] == "metric_unavailable"
            assert f"not available until the {domain} domain exists" in unavailable.json()["detail"]
    forbidden = client.get("/api/v1/metrics", params={"metric": "csat", **WEEK}, headers=agent_headers)
    assert forbidden.status_code == 403
    anonymous = client.get("/api/v1/metrics", params={"metric": "csat", **WEEK})
    assert anonymous.status_code == 401


def test_weekly_report_endpoint(client: TestClient, session: Session) -> None:
    build(session)
    headers = bearer_headers(session, make_user(session, role="lead"))
    session.commit()
    answer = client.get("/api/v1/reports/weekly", params={"week": "2026-W45"}, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["headline"][0]["count"] == 5
    markdown = client.get(
        "/api/v1/reports/weekly", params={"week": "2026-W45", "format": "md"}, headers=headers
    )
    assert markdown.text.startswith("# Weekly ops review 2026-W45")
    bad = client.get("/api/v1/reports/weekly", params={"week": "W45"}, headers=headers)
    assert bad.status_code == 422
