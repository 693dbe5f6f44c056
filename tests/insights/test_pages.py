"""Insights pages through the real app with a signed-in lead: every page renders its numbers
with links to the tickets behind them; bad input gets a readable page and changes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.insights.models import Experiment
from opsdesk.sla import policies
from tests.insights.scenario import MONDAY, build
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_ticket, make_user
from tests.support.web import app_client, sign_in

PASSWORD = "correct horse battery staple"


@pytest.fixture
def session(database: BoundDatabase) -> Session:
    return database.write_sessions()


@pytest.fixture
def lead_client(database: BoundDatabase, session: Session, tmp_path: Path) -> tuple[TestClient, str]:
    user = make_user(session, role="lead", password=PASSWORD)
    session.commit()
    client = app_client(database, tmp_path)
    csrf = sign_in(client, user.email, PASSWORD)
    return client, csrf


def test_metric_explorer_links_every_number_to_its_tickets(
    lead_client: tuple[TestClient, str], session: Session
) -> None:
    client, _ = lead_client
    scenario = build(session)
    session.commit()
    page = client.get(
        "/insights/metrics",
        params={
            "metric": "first_reply_time",
            "by": "group",
            "grain": "week",
            "from": "2026-11-02",
            "to": "2026-11-09",
        },
    )
    assert page.status_code == 200, page.text
    assert 'role="img"' in page.text
    links = re.findall(r'href="(/insights/tickets\?[^"]+)"', page.text)
    assert links
    drill = client.get(links[0].replace("&amp;", "&"))
    assert drill.status_code == 200
    shown = set(map(int, re.findall(r'href="/tickets/(\d+)"', drill.text)))
    assert shown
    assert shown <= {scenario.t1.id, scenario.t2.id, scenario.t4.id}


def test_weekly_live_trends_agent_pages_render(lead_client: tuple[TestClient, str], session: Session) -> None:
    client, _ = lead_client
    scenario = build(session)
    session.commit()
    weekly = client.get("/insights/weekly", params={"week": "2026-W45"})
    assert weekly.status_code == 200
    assert "Weekly ops review 2026-W45" in weekly.text
    assert "What changed" in weekly.text
    with clock.frozen(MONDAY.replace(hour=12)):
        live = client.get("/insights/live")
    assert live.status_code == 200
    assert "Unsolved backlog" in live.text
    trends = client.get("/insights/trends", params={"days": 7})
    assert trends.status_code == 200
    agent = client.get(f"/insights/agents/{scenario.agent.id}")
    assert agent.status_code == 200
    assert scenario.agent.name in agent.text
    team = client.get(f"/insights/teams/{scenario.group_a.id}")
    assert team.status_code == 200


def test_live_floor_shows_breaching_soon_and_explorer_lists_unavailable_metrics(
    lead_client: tuple[TestClient, str], session: Session
) -> None:
    client, _ = lead_client
    policies.save_policy(
        session, SYSTEM, name="Everyone", conditions={}, targets={"first_reply": {"minutes": 60}}, position=1
    )
    # The app runs in the client's own thread, on the real clock: a ticket created now is due
    # within the hour.
    ticket = make_ticket(session, subject="Printer on fire")
    session.commit()
    live = client.get("/insights/live")
    assert live.status_code == 200
    section = live.text[live.text.index("breach-heading") :][:600]
    assert "Breaching soon: 1 SLA target due within the hour" in section, section
    assert f'href="/tickets/{ticket.id}">#{ticket.id} Printer on fire</a>' in live.text
    explorer = client.get(
        "/insights/metrics", params={"metric": "csat", "from": "2026-11-02", "to": "2026-11-09"}
    )
    assert explorer.status_code == 200
    assert "NPS</strong>: NPS is not available until the success domain exists" in explorer.text


def test_bad_input_gets_a_readable_page(lead_client: tuple[TestClient, str]) -> None:
    client, _ = lead_client
    page = client.get("/insights/metrics", params={"metric": "first_reply_time", "grain": "fortnight"})
    assert page.status_code == 422
    assert "unknown grain" in page.text
    weekly = client.get("/insights/weekly", params={"week": "last week"})
    assert weekly.status_code == 422
    assert "ISO week" in weekly.text


def test_experiment_form_creates_and_refuses(lead_client: tuple[TestClient, str], session: Session) -> None:
    client, csrf = lead_client
    before = session.scalar(select(func.count()).select_from(Experiment))
    refused = client.post(
        "/insights/experiments",
        data={
            "csrf_token": csrf,
            "key": "x",
            "name": "",
            "metric": "csat",
            "arms": "A",
            "baseline": "0.8",
            "minimum_effect": "abc",
        },
    )
    assert refused.status_code == 422
    assert "must be a number" in refused.text
    assert session.scalar(select(func.count()).select_from(Experiment)) == before
    created = client.post(
        "/insights/experiments",
        data={
            "csrf_token": csrf,
            "key": "routing.skills-first",
            "name": "Skills first",
            "subject": "routing_rule",
            "metric": "first_contact_resolution",
            "arms": "A, B",
            "baseline": "0.4",
            "minimum_effect": "0.05",
        },
    )
    assert created.status_code == 303
    detail = client.get(created.headers["location"])
    assert "Needs 1,534 tickets per arm" in detail.text
    started = client.post(created.headers["location"] + "/start", data={"csrf_token": csrf})
    assert started.status_code == 303
    assert "running" in client.get(created.headers["location"]).text
