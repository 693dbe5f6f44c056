"""In a real browser: sign in, open a ticket from a view, reply, and see the reply."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AGENT_EMAIL, AGENT_PASSWORD, RunningServer

pytestmark = pytest.mark.e2e


def test_agent_signs_in_opens_a_ticket_and_replies(server: RunningServer, page: Page) -> None:
    page.goto(f"{server.base_url}/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Email").fill(AGENT_EMAIL)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Home is the first view; the sidebar lists the views with their counts.
    expect(page).to_have_url(re.compile(r"/views/\d+"))
    sidebar = page.get_by_role("navigation", name="Views")
    sidebar.get_by_role("link", name=re.compile("All unsolved")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("All unsolved")
    first_ticket = page.locator("table.tickets tbody td.subject a").first
    subject = first_ticket.inner_text()
    first_ticket.click()

    expect(page.get_by_role("heading", level=1)).to_have_text(subject)
    reply_text = "Thanks for the details — I have reset the sync for your workspace. (e2e)"
    page.get_by_label("Message").fill(reply_text)
    page.get_by_label("Then set status").select_option("pending")
    page.get_by_role("button", name="Send").click()

    reply = page.locator(".message-reply").filter(has_text=reply_text)
    expect(reply).to_have_count(1)
    expect(reply).to_contain_text("Erin Tester")
    expect(page.locator(".ticket-header .status")).to_have_text("Pending")
    screenshot = Path(server.data_dir) / "ticket-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
