"""In a real browser against the real server: the public support form (a ticket, the receipt
email received by a local SMTP server, the honeypot refusal shown readably) and the admin page of
brands (add one, see a refused field explained, edit it)."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from playwright.sync_api import Page, expect

from opsdesk import migrate
from opsdesk.auth import service as auth_service
from opsdesk.auth.actor import Actor
from opsdesk.db import Database
from tests.e2e.conftest import RunningServer, _free_port, _wait_until_healthy

pytestmark = pytest.mark.e2e
ADMIN_EMAIL = "e2e.admin@example.com"
ADMIN_PASSWORD = "e2e-admin-password-123"


class Inbox:
    """An aiosmtpd handler that keeps what arrives and wakes whoever waits for it."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:  # noqa: N802
        del server, session
        message = email.message_from_bytes(
            bytes(envelope.original_content or b""), policy=email.policy.default
        )
        assert isinstance(message, EmailMessage)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float) -> list[EmailMessage]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def channels_server(
    tmp_path_factory: pytest.TempPathFactory, inbox: tuple[Inbox, int]
) -> Iterator[RunningServer]:
    """``opsdesk serve`` (with its job runner) whose outgoing mail goes to the local inbox."""
    data_dir = tmp_path_factory.mktemp("e2e-channels")
    database_url = f"sqlite:///{data_dir / 'opsdesk.db'}"
    migrate.upgrade(database_url)
    database = Database(database_url)
    try:
        with database.transaction() as session:
            auth_service.create_user(
                session,
                Actor.system("e2e setup"),
                email=ADMIN_EMAIL,
                name="Ada Admin",
                role="admin",
                password=ADMIN_PASSWORD,
            )
    finally:
        database.dispose()
    port = _free_port()
    log = data_dir / "server.log"
    environment = {
        **os.environ,
        "OPSDESK_DATA_DIR": str(data_dir),
        "OPSDESK_DATABASE_URL": database_url,
        "OPSDESK_ENVIRONMENT": "test",
        "OPSDESK_SMTP_HOST": "127.0.0.1",
        "OPSDESK_SMTP_PORT": str(inbox[1]),
        "OPSDESK_SMTP_TLS": "none",
        "OPSDESK_SUPPORT_ADDRESS": "support@e2e.example",
    }
    command = [
        str(Path(sys.executable).parent / "opsdesk"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base_url, process, log)
        yield RunningServer(base_url, database_url, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_support_form_opens_a_ticket_and_the_receipt_arrives(
    channels_server: RunningServer, inbox: tuple[Inbox, int], page: Page, tmp_path: Path
) -> None:
    page.goto(f"{channels_server.base_url}/support/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("Contact support")
    # A person cannot see the honeypot field; it is out of view and out of the tab order.
    expect(page.locator("#website")).not_to_be_in_viewport()

    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_have_text("Please correct the marked fields.")
    expect(page.get_by_label("Your email")).to_have_attribute("aria-invalid", "true")

    attachment = tmp_path / "screenshot.txt"
    attachment.write_text("the error we see")
    page.get_by_label("Your name").fill("Ines Buyer")
    page.get_by_label("Your email").fill("ines@shop.example")
    page.get_by_label("Subject").fill("Order 88 arrived broken")
    page.get_by_label("How can we help?").fill("The box was crushed and the mug is in pieces.")
    page.get_by_label("Attachments (up to 5)").set_input_files(str(attachment))
    page.get_by_role("button", name="Send").click()

    status = page.get_by_role("status")
    expect(status).to_contain_text("We received your request (#")
    expect(status).to_contain_text("sent a confirmation to ines@shop.example")
    ticket_id = status.inner_text().split("(#", 1)[1].split(")", 1)[0]

    [receipt] = inbox[0].wait_for(1, timeout=60)
    assert receipt["To"] == "ines@shop.example"
    assert receipt["Subject"] == f"Re: [#{ticket_id}] Order 88 arrived broken"
    assert receipt["Auto-Submitted"] == "auto-replied"
    assert f"opened ticket #{ticket_id}" in receipt.get_body(("plain",)).get_content()


def test_support_form_honeypot_refusal_is_readable(channels_server: RunningServer, page: Page) -> None:
    page.goto(f"{channels_server.base_url}/support/new")
    page.get_by_label("Your name").fill("Bot")
    page.get_by_label("Your email").fill("bot@spam.example")
    page.get_by_label("Subject").fill("Cheap watches")
    page.get_by_label("How can we help?").fill("Buy now")
    page.locator("#website").evaluate("field => { field.value = 'http://spam.example' }")  # what bots do
    page.get_by_role("button", name="Send").click()

    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(
        "Your request was not sent: the form's hidden anti-spam field was filled in"
    )
    expect(page.get_by_label("Subject")).to_have_value("Cheap watches")


def test_admin_adds_and_edits_a_brand(channels_server: RunningServer, page: Page) -> None:
    page.goto(f"{channels_server.base_url}/admin/channels/brands")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Brands")
    settings_nav = page.get_by_role("navigation", name="Channel settings")
    expect(settings_nav.get_by_role("link", name="Mailboxes")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Acme")
    page.get_by_label("Support address").fill("not an address")
    page.get_by_label("Receipt text").fill("Hi {customer}")
    page.get_by_role("button", name="Add brand").click()

    expect(page.locator("#error-support_address")).to_have_text("is not an email address")
    expect(page.locator("#error-receipt_template")).to_contain_text("uses unknown placeholders {customer}")
    page.get_by_label("Support address").fill("help@acme.example")
    page.get_by_label("Receipt text").fill("Hi {name}, we opened #{ticket_id} for you.")
    page.get_by_role("button", name="Add brand").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Brand: Acme")
    expect(page.get_by_role("status")).to_have_text("Brand added")
    page.get_by_label("From name").fill("Acme Care")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved")
    expect(page.get_by_label("From name")).to_have_value("Acme Care")

    settings_nav.get_by_role("link", name="Brands").click()
    row = page.locator("tbody tr").filter(has_text="help@acme.example")
    expect(row).to_contain_text("Acme Care")
