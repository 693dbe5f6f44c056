"""Channel settings through the API and the admin pages: brands, mailboxes (with a connection
test against the real Dovecot), Slack connections. Admins change them, leads only look, agents
see nothing; secrets go in and never come out; bad input is refused and changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from opsdesk.auth.models import AuditEvent
from opsdesk.channels import secret_box
from opsdesk.channels.models import EmailBrand, ImapMailbox, SlackConnection
from opsdesk.config import Settings
from tests.support.databases import BoundDatabase
from tests.support.dovecot import ImapServer, dovecot_server
from tests.support.factories import make_user
from tests.support.web import app_client, bearer_headers, sign_in

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def imap_server() -> Iterator[ImapServer]:
    with dovecot_server() as server:
        yield server


def _headers(database: BoundDatabase, role: str) -> dict[str, str]:
    with database.transaction() as session:
        return bearer_headers(session, make_user(session, role=role))


def _count(database: BoundDatabase, model: type) -> int:
    with database.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_brands_api_creates_updates_and_refuses_bad_input(database: BoundDatabase, tmp_path: Path) -> None:
    client = app_client(database, tmp_path)
    admin = _headers(database, "admin")

    created = client.post(
        "/api/v1/channels/brands",
        json={
            "name": "Acme",
            "support_address": "Help@Acme.example",
            "from_address": "noreply-but-not@acme.example",
            "receipt_template": "Hi {name}, ticket #{ticket_id} is open.",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    brand = created.json()
    assert brand["support_address"] == "help@acme.example"
    assert brand["from_name"] == "Acme"

    patched = client.patch(
        f"/api/v1/channels/brands/{brand['id']}", json={"from_name": "Acme Care"}, headers=admin
    )
    assert patched.status_code == 200
    assert patched.json()["from_name"] == "Acme Care"
    assert patched.json()["receipt_template"] == "Hi {name}, ticket #{ticket_id} is open."

    bad = client.post(
        "/api/v1/channels/brands",
        json={"name": "", "support_address": "help@acme.example", "receipt_template": "Hi {customer}"},
        headers=admin,
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    problems = {item["field"]: item["message"] for item in bad.json()["errors"]}
    assert set(problems) == {"name", "support_address", "receipt_template"}
    assert problems["receipt_template"] == (
        "uses unknown placeholders {customer}; allowed: {name}, {ticket_id}, {subject}"
    )
    assert _count(database, EmailBrand) == 1

    lead = _headers(database, "lead")
    assert client.get("/api/v1/channels/brands", headers=lead).json()[0]["name"] == "Acme"
    refused = client.post(
        "/api/v1/channels/brands", json={"name": "B", "support_address": "b@b.example"}, headers=lead
    )
    assert refused.status_code == 403
    assert client.get("/api/v1/channels/brands", headers=_headers(database, "agent")).status_code == 403
    assert _count(database, EmailBrand) == 1


def test_mailbox_api_never_returns_the_password_and_tests_the_connection(
    database: BoundDatabase, tmp_path: Path, imap_server: ImapServer
) -> None:
    client = app_client(database, tmp_path)
    admin = _headers(database, "admin")
    body = {
        "name": "Support inbox",
        "host": imap_server.host,
        "port": imap_server.port,
        "security": "none",
        "username": imap_server.username,
        "password": imap_server.password,
        "poll_interval_seconds": 30,
    }

    created = client.post("/api/v1/channels/mailboxes", json=body, headers=admin)
    assert created.status_code == 201, created.text
    mailbox = created.json()
    assert "password" not in mailbox
    assert mailbox["has_password"] is True
    assert imap_server.password not in created.text
    listed = client.get("/api/v1/channels/mailboxes", headers=admin)
    assert imap_server.password not in listed.text
    with database.transaction(write=False) as session:
        assert session.get_one(ImapMailbox, mailbox["id"]).password.startswith("fernet:")
        events = session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "imap_mailbox")).all()
        assert [event.action for event in events] == ["created"]
        audit_text = " ".join(str(event.new_value) for event in events)
        assert imap_server.password not in audit_text

    works = client.post(f"/api/v1/channels/mailboxes/{mailbox['id']}/test", headers=admin)
    assert works.status_code == 200
    assert works.json()["ok"] is True
    assert works.json()["message"].startswith("connected: folder INBOX holds")

    changed = client.patch(
        f"/api/v1/channels/mailboxes/{mailbox['id']}", json={"password": "wrong password"}, headers=admin
    )
    assert changed.status_code == 200
    assert changed.json()["poll_interval_seconds"] == 30  # untouched fields stay
    fails = client.post(f"/api/v1/channels/mailboxes/{mailbox['id']}/test", headers=admin)
    assert fails.json() == {"ok": False, "message": "the server refused the username or password"}

    bad = client.patch(
        f"/api/v1/channels/mailboxes/{mailbox['id']}",
        json={"port": 0, "security": "ssl3", "poll_interval_seconds": 1},
        headers=admin,
    )
    assert bad.status_code == 422
    assert {item["field"] for item in bad.json()["errors"]} == {"port", "security", "poll_interval_seconds"}
    with database.transaction(write=False) as session:
        stored = session.get_one(ImapMailbox, mailbox["id"])
        assert (stored.port, stored.security, stored.poll_interval_seconds) == (imap_server.port, "none", 30)

    lead = _headers(database, "lead")
    assert client.get(f"/api/v1/channels/mailboxes/{mailbox['id']}", headers=lead).status_code == 200
    assert client.post(f"/api/v1/channels/mailboxes/{mailbox['id']}/test", headers=lead).status_code == 403
    assert client.delete(f"/api/v1/channels/mailboxes/{mailbox['id']}", headers=lead).status_code == 403
    assert client.delete(f"/api/v1/channels/mailboxes/{mailbox['id']}", headers=admin).status_code == 204
    assert _count(database, ImapMailbox) == 0
    assert client.get(f"/api/v1/channels/mailboxes/{mailbox['id']}", headers=admin).status_code == 404


def test_slack_connection_api_seals_token_and_secret(database: BoundDatabase, tmp_path: Path) -> None:
    client = app_client(database, tmp_path)
    admin = _headers(database, "admin")
    created = client.post(
        "/api/v1/channels/slack-connections",
        json={
            "team_id": "T1",
            "channel_id": "C1",
            "name": "#acme",
            "bot_token": "xoxb-secret-1",
            "signing_secret": "sign-me",
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "id": created.json()["id"],
        "team_id": "T1",
        "channel_id": "C1",
        "name": "#acme",
        "has_bot_token": True,
        "has_signing_secret": True,
        "account_id": None,
    }
    bad = client.post(
        "/api/v1/channels/slack-connections",
        json={"team_id": "T1", "channel_id": "C1", "bot_token": "not-a-bot-token", "account_id": 999999},
        headers=admin,
    )
    assert bad.status_code == 422
    assert {item["field"] for item in bad.json()["errors"]} == {"channel_id", "bot_token", "account_id"}
    assert _count(database, SlackConnection) == 1
    with database.transaction(write=False) as session:
        stored = session.scalars(select(SlackConnection)).one()
        assert stored.bot_token.startswith("fernet:")
        assert "xoxb-secret-1" not in stored.bot_token


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def _signed_in(database: BoundDatabase, tmp_path: Path, role: str) -> tuple[TestClient, str]:
    client = app_client(database, tmp_path)
    with database.transaction() as session:
        user = make_user(session, role=role, password=PASSWORD)
        email = user.email
    return client, sign_in(client, email, PASSWORD)


def test_admin_pages_add_edit_and_test_a_mailbox(
    database: BoundDatabase, tmp_path: Path, imap_server: ImapServer
) -> None:
    client, token = _signed_in(database, tmp_path, "admin")
    listing = client.get("/admin/channels/mailboxes")
    assert listing.status_code == 200
    assert 'href="/admin/channels/brands"' in listing.text
    assert 'href="/admin/webhooks"' in listing.text
    home = client.get("/admin/sla")  # any other page: the main navigation links the settings
    assert '<a href="/admin/channels">Channels</a>' in home.text

    refused = client.post(
        "/admin/channels/mailboxes",
        data={
            "csrf_token": token,
            "name": "Inbox",
            "host": "",
            "port": "993",
            "security": "tls",
            "username": "u",
            "password": "",
            "poll_interval_seconds": "60",
            "is_active": "on",
        },
    )
    assert refused.status_code == 422
    assert '<p class="error" id="error-host">must not be empty</p>' in refused.text
    assert '<p class="error" id="error-password">must not be empty</p>' in refused.text
    assert _count(database, ImapMailbox) == 0

    added = client.post(
        "/admin/channels/mailboxes",
        data={
            "csrf_token": token,
            "name": "Inbox",
            "host": imap_server.host,
            "port": str(imap_server.port),
            "security": "none",
            "username": imap_server.username,
            "password": imap_server.password,
            "folder": "INBOX",
            "poll_interval_seconds": "45",
            "is_active": "on",
        },
    )
    assert added.status_code == 303
    page = client.get(added.headers["location"])
    assert page.status_code == 200
    assert imap_server.password not in page.text
    assert "A password is stored (encrypted); leave empty to keep it." in page.text
    mailbox_id = int(added.headers["location"].split("/")[-1].split("?")[0])

    tested = client.post(f"/admin/channels/mailboxes/{mailbox_id}/test", data={"csrf_token": token})
    assert tested.status_code == 200
    assert "Connection works: connected: folder INBOX holds" in tested.text

    saved = client.post(
        f"/admin/channels/mailboxes/{mailbox_id}",
        data={
            "csrf_token": token,
            "name": "Inbox",
            "host": imap_server.host,
            "port": str(imap_server.port),
            "security": "none",
            "username": imap_server.username,
            "password": "",
            "folder": "INBOX",
            "poll_interval_seconds": "120",
        },
    )
    assert saved.status_code == 303
    with database.transaction(write=False) as session:
        mailbox = session.get_one(ImapMailbox, mailbox_id)
        assert (mailbox.poll_interval_seconds, mailbox.is_active) == (120, False)
        settings = Settings(data_dir=tmp_path, environment="test")
        assert secret_box.reveal(settings, mailbox.password) == imap_server.password  # kept


def test_leads_see_channel_pages_read_only_and_cannot_post(database: BoundDatabase, tmp_path: Path) -> None:
    admin_client, admin_token = _signed_in(database, tmp_path, "admin")
    made = admin_client.post(
        "/admin/channels/brands",
        data={"csrf_token": admin_token, "name": "Acme", "support_address": "help@acme.example"},
    )
    assert made.status_code == 303
    brand_path = made.headers["location"].split("?")[0]

    client, token = _signed_in(database, tmp_path, "lead")
    listing = client.get("/admin/channels/brands")
    assert listing.status_code == 200
    assert "help@acme.example" in listing.text
    assert "only admins change them" in listing.text
    assert "Add brand" not in listing.text
    page = client.get(brand_path)
    assert page.status_code == 200
    assert "readonly" in page.text
    assert ">Save</button>" not in page.text
    refused = client.post(
        brand_path, data={"csrf_token": token, "name": "Taken over", "support_address": "x@y.example"}
    )
    assert refused.status_code == 403
    with database.transaction(write=False) as session:
        assert session.scalars(select(EmailBrand.name)).one() == "Acme"

    assert '<a href="/admin/channels" aria-current="page">Channels</a>' in listing.text
    agent, _ = _signed_in(database, tmp_path, "agent")
    assert agent.get("/admin/channels/slack").status_code == 403
    assert 'href="/admin/channels"' not in agent.get("/").text
