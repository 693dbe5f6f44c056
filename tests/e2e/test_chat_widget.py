"""In a real browser: a shop page on another origin embeds ``/widget.js``; the customer writes; a
signed-in agent sees it on ``/chat``, accepts and replies; the customer's widget shows the reply
and keeps the conversation across a reload. Offline: with no agent online the widget says so,
the conversation is an ordinary ticket, and the agent's reply reaches the customer by email (a
real SMTP server, aiosmtpd)."""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from opsdesk.auth.actor import Actor
from opsdesk.channels.models import ChatConversation
from opsdesk.channels.service import chat
from opsdesk.db import Database
from tests.e2e.conftest import AGENT_EMAIL, AGENT_PASSWORD, _free_port, _prepare, _wait_until_healthy
from tests.support.smtp_sink import SmtpSink, smtp_sink

pytestmark = pytest.mark.e2e

HOST_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Welcome to the shop</h1><p>Our products.</p>
<script src="{base}/widget.js" data-brand="shop" async></script>
</body></html>
"""


@dataclass(frozen=True, slots=True)
class ChatSite:
    opsdesk_url: str
    shop_url: str
    database_url: str
    sink: SmtpSink


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatSite]:
    data_dir = tmp_path_factory.mktemp("e2e-chat")
    database_url = f"sqlite:///{data_dir / 'opsdesk.db'}"
    _prepare(database_url)
    shop_port = _free_port()
    shop_origin = f"http://localhost:{shop_port}"
    database = Database(database_url)
    try:
        with database.transaction() as session:
            chat.create_brand(
                session,
                Actor.system("e2e setup"),
                key="shop",
                name="Shop Support",
                allowed_origins=[shop_origin],
                accept_timeout_seconds=300,
            )
    finally:
        database.dispose()
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    shop_dir = data_dir / "shop"
    shop_dir.mkdir()
    (shop_dir / "index.html").write_text(HOST_PAGE.format(base=base_url))
    shop = http.server.ThreadingHTTPServer(
        ("127.0.0.1", shop_port), functools.partial(_QuietHandler, directory=str(shop_dir))
    )
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    log = data_dir / "server.log"
    with smtp_sink() as sink:
        environment = {
            **os.environ,
            "OPSDESK_DATA_DIR": str(data_dir),
            "OPSDESK_DATABASE_URL": database_url,
            "OPSDESK_ENVIRONMENT": "test",
            "OPSDESK_BASE_URL": base_url,
            "OPSDESK_SMTP_HOST": sink.host,
            "OPSDESK_SMTP_PORT": str(sink.port),
            "OPSDESK_SMTP_TLS": "none",
            "OPSDESK_SUPPORT_ADDRESS": "support@shop.example",
        }
        executable = str(Path(sys.executable).parent / "opsdesk")
        command = [executable, "serve", "--host", "127.0.0.1", "--port", str(port)]
        with log.open("wb") as output:
            process = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_until_healthy(base_url, process, log)
            yield ChatSite(base_url, f"{shop_origin}/index.html", database_url, sink)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            shop.shutdown()


def _sign_in(page: Page, base_url: str, target: str) -> None:
    page.goto(f"{base_url}/login?next={target}")
    page.get_by_label("Email").fill(AGENT_EMAIL)
    page.get_by_label("Password").fill(AGENT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(target) + "$"))


def _start_chat(customer: Page, site: ChatSite, name: str, email: str) -> None:
    customer.goto(site.shop_url)
    customer.get_by_role("button", name=re.compile("Chat with us|Leave us a message")).click()
    panel = customer.get_by_role("dialog", name="Shop Support")
    expect(panel).to_be_visible()
    panel.get_by_label("Your name").fill(name)
    panel.get_by_label("Your email").fill(email)
    panel.get_by_role("button", name="Start chat").click()
    expect(panel.get_by_label("Message")).to_be_visible()


def _ticket_of(site: ChatSite, email: str) -> int:
    database = Database(site.database_url)
    try:
        with database.transaction(write=False) as session:
            ticket_id = session.scalar(
                select(ChatConversation.ticket_id).where(ChatConversation.visitor_email == email)
            )
    finally:
        database.dispose()
    assert ticket_id is not None
    return int(ticket_id)


def test_customer_and_agent_chat_live_across_origins(site: ChatSite, browser: Browser) -> None:
    agent_context = browser.new_context(viewport={"width": 1300, "height": 900})
    customer_context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        agent = agent_context.new_page()
        agent.set_default_timeout(15_000)
        _sign_in(agent, site.opsdesk_url, "/chat")
        expect(agent.get_by_role("heading", name="Live chat")).to_be_visible()
        expect(agent.get_by_text("1 agent(s) online for chat")).to_be_visible()

        customer = customer_context.new_page()
        customer.set_default_timeout(15_000)
        _start_chat(customer, site, "Kim Lee", "kim@customer.example")
        panel = customer.get_by_role("dialog", name="Shop Support")
        panel.get_by_label("Message").fill("Hello, my order 88 has not arrived.")
        panel.get_by_label("Message").press("Enter")
        expect(panel.get_by_role("status")).to_contain_text("Waiting for an agent")

        waiting = agent.locator("[data-chat-list='waiting']")
        expect(waiting).to_contain_text("Kim Lee: Hello, my order 88 has not arrived.")
        agent.get_by_role("button", name="Accept chat with Kim Lee").click()
        log = agent.get_by_role("list", name="Conversation messages")
        expect(log).to_contain_text("Hello, my order 88 has not arrived.")
        expect(panel.get_by_role("status")).to_contain_text("Erin Tester is chatting with you")

        agent.get_by_label("Reply").fill("Sorry about that, Kim: it ships today.")
        agent.get_by_role("button", name="Send").click()
        conversation = panel.get_by_role("log", name="Conversation")
        expect(conversation).to_contain_text("Sorry about that, Kim: it ships today.")

        panel.get_by_label("Message").fill("Great, thanks!")
        panel.get_by_role("button", name="Send").click()
        expect(log).to_contain_text("Great, thanks!")

        # a reload keeps the conversation (the visitor token is in localStorage)
        customer.reload()
        panel = customer.get_by_role("dialog", name="Shop Support")
        expect(panel).to_be_visible()
        expect(panel.get_by_role("log", name="Conversation")).to_contain_text(
            "Sorry about that, Kim: it ships today."
        )
        expect(panel.get_by_role("log", name="Conversation")).to_contain_text("Great, thanks!")

        # the ticket page shows the live chat panel with the conversation
        agent.goto(f"{site.opsdesk_url}/tickets/{_ticket_of(site, 'kim@customer.example')}")
        chat_panel = agent.locator("#panel-chat")
        expect(chat_panel).to_contain_text("Live with Erin Tester")
        expect(chat_panel.get_by_role("list", name="Live chat messages")).to_contain_text("Great, thanks!")
        screenshot = Path(site.database_url.removeprefix("sqlite:///")).parent / "chat-ticket.png"
        agent.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000
    finally:
        agent_context.close()
        customer_context.close()


def test_offline_chat_becomes_a_ticket_answered_by_email(site: ChatSite, browser: Browser) -> None:
    agent_context = browser.new_context(viewport={"width": 1300, "height": 900})
    customer_context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        agent = agent_context.new_page()
        agent.set_default_timeout(15_000)
        _sign_in(agent, site.opsdesk_url, "/chat")
        agent.get_by_label("My chat status").select_option("offline")
        expect(agent.get_by_text("0 agent(s) online for chat")).to_be_visible()

        customer = customer_context.new_page()
        customer.set_default_timeout(15_000)
        _start_chat(customer, site, "Ola Nordmann", "ola@customer.example")
        panel = customer.get_by_role("dialog", name="Shop Support")
        panel.get_by_label("Message").fill("Can I change my delivery address?")
        panel.get_by_role("button", name="Send").click()
        expect(panel.get_by_role("status")).to_contain_text(
            "No agent is available right now. We'll answer by email at ola@customer.example."
        )

        ticket_id = _ticket_of(site, "ola@customer.example")
        agent.goto(f"{site.opsdesk_url}/tickets/{ticket_id}")
        expect(agent.locator("#panel-chat")).to_contain_text("replies go to the customer by email")
        reply = "Yes: reply with the new address and we will update it."
        agent.get_by_label("Message", exact=True).fill(reply)
        agent.get_by_role("button", name="Send", exact=True).click()
        expect(agent.locator(".message-reply").filter(has_text=reply)).to_have_count(1)

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            reply in (message.get_body(("plain",)) or message).get_content()  # type: ignore[union-attr]
            for _, _, message in site.sink.received
        ):
            time.sleep(0.2)
        replies = [
            (recipients, message)
            for _, recipients, message in site.sink.received
            if reply in (message.get_body(("plain",)) or message).get_content()  # type: ignore[union-attr]
        ]
        assert len(replies) == 1
        recipients, message = replies[0]
        assert recipients == ["ola@customer.example"]
        assert message["Subject"] == f"Re: [#{ticket_id}] Chat with Ola Nordmann"
        to_ola = [
            message for _, recipients, message in site.sink.received if recipients == ["ola@customer.example"]
        ]
        # the receipt that told the customer the chat became a ticket, then the reply
        assert [(message["Auto-Submitted"], message["Subject"]) for message in to_ola] == [
            ("auto-replied", f"Re: [#{ticket_id}] Chat with Ola Nordmann"),
            (None, f"Re: [#{ticket_id}] Chat with Ola Nordmann"),
        ]
    finally:
        agent_context.close()
        customer_context.close()
