"""In a real browser: make and edit a saved view with the live preview count, and change two
tickets at once from a list with the bulk bar."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import AGENT_EMAIL, AGENT_PASSWORD, RunningServer

pytestmark = pytest.mark.e2e


def _sign_in(server: RunningServer, page: Page) -> None:
    page.goto(f"{server.base_url}/login")
    page.get_by_label("Email").fill(AGENT_EMAIL)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/views/\d+"))


def test_agent_creates_and_edits_a_view_with_a_live_count(server: RunningServer, page: Page) -> None:
    _sign_in(server, page)
    page.get_by_role("link", name="New view").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New view")
    preview = page.locator("#preview-count")
    expect(preview).to_have_text(re.compile(r"^\d+ tickets? match"))

    page.get_by_label("Name").fill("Urgent and high, e2e")
    # The count follows the form as it is edited (no submit).
    page.get_by_label("Tags (all of them; separate with commas)").fill("no-such-tag-e2e")
    expect(preview).to_have_text("0 tickets match")
    page.get_by_label("Tags (all of them; separate with commas)").fill("")
    page.get_by_role("checkbox", name="Urgent").check()
    page.get_by_role("checkbox", name="High").check()
    expect(preview).to_have_text(re.compile(r"^\d+ tickets? match"))
    # A bad value is explained right away, and refused on save with the form kept.
    page.get_by_label("Solved in the last … days").fill("soon")
    expect(preview).to_contain_text("must be a positive whole number")
    page.get_by_role("button", name="Save view").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    expect(page.get_by_label("Name")).to_have_value("Urgent and high, e2e")
    page.get_by_label("Solved in the last … days").fill("")
    page.get_by_role("button", name="Save view").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Urgent and high, e2e")
    sidebar = page.get_by_role("navigation", name="Views")
    expect(sidebar.get_by_role("link", name=re.compile("Urgent and high, e2e"))).to_have_count(1)
    for cell in page.locator("table.tickets tbody td .priority").all():
        assert cell.inner_text() in ("Urgent", "High")

    page.get_by_role("link", name="Edit view").click()
    page.get_by_label("Name").fill("Hot tickets, e2e")
    page.get_by_role("checkbox", name="High").uncheck()
    page.get_by_role("button", name="Save view").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hot tickets, e2e")
    for cell in page.locator("table.tickets tbody td .priority").all():
        assert cell.inner_text() == "Urgent"

    page.get_by_role("link", name="Manage views").click()
    expect(page.get_by_role("table", name="Your views")).to_contain_text("Priority: Urgent")
    page.get_by_role("link", name=re.compile("Edit.*Hot tickets, e2e")).click()
    screenshot = Path(server.data_dir) / "view-editor.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000


def _new_tickets(server: RunningServer, count: int) -> None:
    """Fresh unsolved tickets through the API (the small seeded company has few unsolved)."""
    with httpx.Client(base_url=server.base_url, timeout=30) as api:
        signed_in = api.post("/api/v1/session", json={"email": AGENT_EMAIL, "password": AGENT_PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        headers = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
        for number in range(count):
            created = api.post(
                "/api/v1/tickets",
                headers=headers,
                json={
                    "subject": f"Bulk candidate {number} (e2e)",
                    "body": "Please call me back about my invoice.",
                    "requester": {"email": f"bulk{number}@customer.example.org", "name": "Bulk Tester"},
                },
            )
            assert created.status_code == 201, created.text


def test_agent_changes_two_tickets_with_the_bulk_bar(server: RunningServer, page: Page) -> None:
    _new_tickets(server, 3)
    _sign_in(server, page)
    page.get_by_role("navigation", name="Views").get_by_role("link", name=re.compile("All unsolved")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("All unsolved")
    boxes = page.locator('table.tickets tbody input[name="ids"]')
    count_label = page.locator(".bulk-selected")

    select_all = page.get_by_label("Select all tickets on this page")
    select_all.check()
    expect(count_label).to_have_text(f"{boxes.count()} tickets selected.")
    assert boxes.count() >= 3
    select_all.uncheck()
    expect(count_label).to_have_text(re.compile("Select tickets below"))

    chosen = [boxes.nth(0).get_attribute("value"), boxes.nth(1).get_attribute("value")]
    boxes.nth(0).check()
    boxes.nth(1).check()
    expect(count_label).to_have_text("2 tickets selected.")
    bar = page.get_by_role("form", name="Change selected tickets")
    bar.get_by_label("Priority").select_option("urgent")
    bar.get_by_label("Add tags").fill("e2e-bulk")
    bar.get_by_role("button", name="Apply to selected").click()

    expect(page.get_by_role("status")).to_contain_text("2 tickets changed.")
    screenshot = Path(server.data_dir) / "bulk-result.png"
    page.screenshot(path=str(screenshot), full_page=False)
    assert screenshot.stat().st_size > 10_000
    for ticket_id in chosen:
        row = page.locator("table.tickets tbody tr").filter(has=page.locator(f'input[value="{ticket_id}"]'))
        expect(row.locator(".priority")).to_have_text("Urgent")
        expect(row.locator(".tag", has_text="e2e-bulk")).to_have_count(1)
    page.goto(f"{server.base_url}/tickets/{chosen[0]}")
    expect(page.locator(".trail")).to_contain_text("e2e-bulk")
