"""In a real browser: an agent opens a ticket of a paying customer, refunds part of a charge from
the billing panel beside the ticket, and sees the customer told (the refund macro) and the refund
in the ticket's audit trail."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import exists, select

from opsdesk.billing.models import BillingCustomer, Dispute, Payment, Refund
from opsdesk.db import Database
from opsdesk.tickets.models import Ticket
from tests.e2e.conftest import AGENT_EMAIL, AGENT_PASSWORD, RunningServer

pytestmark = pytest.mark.e2e


def _ticket_with_a_refundable_charge(database_url: str) -> tuple[int, int]:
    """A seeded ticket (not closed) whose account pays by card and has a captured charge with no
    dispute (the seed disputes some recent charges, which can then not be refunded: which ones
    depends on the day the seed runs)."""
    database = Database(database_url)
    try:
        with database.transaction() as session:
            row = session.execute(
                select(Ticket.id, Payment.id)
                .join(BillingCustomer, BillingCustomer.account_id == Ticket.account_id)
                .join(Payment, Payment.customer_id == BillingCustomer.id)
                .where(
                    Payment.status == "succeeded",
                    Payment.refunded_amount_minor == 0,
                    Payment.reserved_amount_minor == 0,
                    Payment.amount_minor > 100,
                    Payment.currency == "USD",
                    Ticket.status != "closed",
                    ~exists().where(Dispute.payment_id == Payment.id),
                )
                .order_by(Payment.id.desc(), Ticket.id)
                .limit(1)
            ).one()
            return int(row[0]), int(row[1])
    finally:
        database.dispose()


def _refunds_of(database_url: str, payment_id: int) -> list[tuple[int, str, int | None]]:
    database = Database(database_url)
    try:
        with database.transaction() as session:
            return [
                (item.amount_minor, item.status, item.ticket_id)
                for item in session.scalars(select(Refund).where(Refund.payment_id == payment_id))
            ]
    finally:
        database.dispose()


def test_agent_refunds_part_of_a_charge_from_the_ticket_page(server: RunningServer, page: Page) -> None:
    ticket_id, payment_id = _ticket_with_a_refundable_charge(server.database_url)
    page.goto(f"{server.base_url}/login")
    page.get_by_label("Email").fill(AGENT_EMAIL)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/views/\d+"))

    page.goto(f"{server.base_url}/tickets/{ticket_id}")
    panel = page.locator("#panel-billing")
    expect(panel.get_by_role("heading", name="Billing")).to_be_visible()
    expect(panel.get_by_role("table", name="Recent charges")).to_be_visible()
    panel.get_by_text("Refund a charge").click()
    panel.get_by_label("Charge", exact=True).select_option(str(payment_id))
    panel.get_by_label(re.compile(r"^Amount")).fill("1.25")
    panel.get_by_label("Reason", exact=True).select_option("goodwill")
    panel.get_by_label("Note", exact=True).fill("e2e goodwill refund")
    panel.get_by_role("button", name="Refund").click()

    expect(page).to_have_url(re.compile(rf"/tickets/{ticket_id}"))
    told = page.locator(".message-reply").filter(has_text="We have refunded USD 1.25")
    expect(told).to_have_count(1)
    expect(page.locator("table.trail")).to_contain_text("refund")
    expect(page.locator("table.trail")).to_contain_text("issued")
    assert _refunds_of(server.database_url, payment_id) == [(125, "succeeded", ticket_id)]
    screenshot = Path(server.data_dir) / "billing-refund.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
