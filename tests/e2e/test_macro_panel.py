"""In a real browser: on a ticket, pick a macro, preview exactly what it will send and change,
apply it, and see the reply, the new status and the SLA panel; the macro's use is counted and
audited under its name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from opsdesk.auth.actor import Actor
from opsdesk.auth.models import AuditEvent
from opsdesk.automation import macros
from opsdesk.automation.models import Macro
from opsdesk.db import Database
from opsdesk.tickets import service as tickets
from tests.e2e.conftest import AGENT_EMAIL, AGENT_PASSWORD, RunningServer

pytestmark = pytest.mark.e2e


def test_agent_picks_previews_and_applies_a_macro(server: RunningServer, page: Page) -> None:
    database = Database(server.database_url)
    try:
        with database.transaction() as session:
            macro = macros.save_macro(
                session,
                Actor.system("e2e setup"),
                name="E2E: ask for a screenshot",
                shared=True,
                body_template="Hi {{ ticket.requester.first_name }}, could you send a screenshot? "
                "— {{ agent.name }}",
                actions=[
                    {"type": "set_field", "field": "status", "value": "pending"},
                    {"type": "add_tags", "tags": ["e2e-screenshot"]},
                ],
            )
            macro_id = macro.id
            ticket = tickets.create_ticket(
                session,
                Actor.system("e2e setup"),
                tickets.NewTicket(
                    subject="The export button does nothing (e2e macro)",
                    body_text="I click Export and nothing happens.",
                    requester_email="dana.macro@customer.example.org",
                    requester_name="Dana Macro",
                    priority="urgent",
                ),
            )
            ticket_id = ticket.id
            first_name = "Dana"
    finally:
        database.dispose()

    page.goto(f"{server.base_url}/login")
    page.get_by_label("Email").fill(AGENT_EMAIL)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/views/\d+"))

    page.goto(f"{server.base_url}/tickets/{ticket_id}")
    expect(page.locator("#panel-sla")).to_be_visible()
    picker = page.locator("#panel-macros")
    expect(picker.get_by_role("heading", name="Apply a macro")).to_be_visible()
    picker.get_by_label("Macro").select_option(str(macro_id))
    picker.get_by_role("button", name="Preview").click()

    expected = f"Hi {first_name}, could you send a screenshot? — Erin Tester"
    expect(page.get_by_role("heading", level=1)).to_have_text("Apply “E2E: ask for a screenshot”")
    expect(page.locator("pre.macro-body")).to_have_text(expected)
    changes = page.locator("table.macro-changes")
    expect(changes.locator("tr").filter(has_text="Status")).to_contain_text("pending")
    expect(changes.locator("tr").filter(has_text="Tags")).to_contain_text("e2e-screenshot")
    page.screenshot(path=str(Path(server.data_dir) / "macro-preview.png"), full_page=True)
    page.get_by_role("button", name="Apply macro").click()

    expect(page).to_have_url(re.compile(rf"/tickets/{ticket_id}$"))
    expect(page.locator(".message-reply").filter(has_text=expected)).to_have_count(1)
    expect(page.locator(".ticket-header .status")).to_have_text("Pending")
    expect(page.locator("#panel-sla")).to_be_visible()
    expect(page.locator("#panel-sla .sla-target").first).to_contain_text("Policy:")
    page.screenshot(path=str(Path(server.data_dir) / "ticket-after-macro.png"), full_page=True)

    database = Database(server.database_url)
    try:
        with database.transaction(write=False) as session:
            assert session.get_one(Macro, macro_id).usage_count == 1
            audited = session.scalars(
                select(AuditEvent.actor_name).where(
                    AuditEvent.ticket_id == ticket_id, AuditEvent.action == "macro_applied"
                )
            ).all()
            assert audited == ["E2E: ask for a screenshot (by Erin Tester)"]
    finally:
        database.dispose()
