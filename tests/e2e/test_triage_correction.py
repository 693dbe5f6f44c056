"""In a real browser: a ticket triage was unsure about waits in the shipped "Needs triage" view; an
agent opens it, sets the category from the ticket page's triage panel, and the ticket leaves the
queue with the correction recorded (audit row, training example)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from opsdesk.auth.models import AuditEvent
from opsdesk.db import Database
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Ticket
from opsdesk.triage.models import TriagePrediction
from tests.e2e.conftest import AGENT_EMAIL, AGENT_PASSWORD, RunningServer
from tests.support.factories import SYSTEM

pytestmark = pytest.mark.e2e

SUBJECT = "Odd thing with the widget (e2e triage)"


def _handed_off_ticket(database_url: str) -> int:
    database = Database(database_url)
    try:
        with database.transaction() as session:
            ticket = tickets.create_ticket(
                session,
                SYSTEM,
                tickets.NewTicket(
                    subject=SUBJECT,
                    body_text="Something odd happened with the thing today.",
                    requester_email="unsure.customer@example.org",
                ),
            )
            assert "needs_triage" in ticket.tags  # triage was not sure: handed to a person
            return ticket.id
    finally:
        database.dispose()


def _needs_triage_count(page: Page) -> int:
    link = page.get_by_role("navigation", name="Views").get_by_role("link", name=re.compile("Needs triage"))
    return int(link.locator(".count").inner_text())


def test_agent_corrects_the_category_from_the_ticket_page(server: RunningServer, page: Page) -> None:
    ticket_id = _handed_off_ticket(server.database_url)
    page.goto(f"{server.base_url}/login")
    page.get_by_label("Email").fill(AGENT_EMAIL)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/views/\d+"))

    sidebar = page.get_by_role("navigation", name="Views")
    sidebar.get_by_role("link", name=re.compile("Needs triage")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Needs triage")
    waiting = _needs_triage_count(page)
    assert waiting >= 1
    page.locator("table.tickets tbody td.subject a", has_text=SUBJECT).click()
    expect(page).to_have_url(re.compile(rf"/tickets/{ticket_id}"))

    panel = page.locator("#panel-triage")
    expect(panel).to_contain_text("handed to a person")
    panel.get_by_label("Set the category").select_option("bug")
    panel.get_by_role("button", name="Set category").click()

    expect(page).to_have_url(re.compile(rf"/tickets/{ticket_id}"))
    panel = page.locator("#panel-triage")
    expect(panel).to_contain_text("corrected to bug")
    expect(panel.get_by_label("Correct the category")).to_have_value("bug")
    assert _needs_triage_count(page) == waiting - 1

    database = Database(server.database_url)
    try:
        with database.transaction(write=False) as session:
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            assert ticket.category == "bug"
            assert "needs_triage" not in ticket.tags
            prediction = session.scalar(
                select(TriagePrediction).where(TriagePrediction.ticket_id == ticket_id)
            )
            assert prediction is not None
            assert prediction.corrected_category == "bug"
            changed_by = session.scalar(
                select(AuditEvent.actor_name).where(
                    AuditEvent.ticket_id == ticket_id, AuditEvent.field == "category"
                )
            )
            assert changed_by == "Erin Tester"
    finally:
        database.dispose()
