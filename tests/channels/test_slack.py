"""Slack Events API: real signed payloads to the endpoint; a channel message opens a ticket, a
thread reply adds to it, retries of an event land once; bad or stale signatures are refused and
change nothing; an agent's public reply is posted back into the thread with slack-sdk, received
by a local HTTP server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from opsdesk.app import create_app
from opsdesk.channels.models import RawInbound, SlackThread
from opsdesk.channels.service.slack import connect_channel
from opsdesk.channels.slack_signing import slack_signature
from opsdesk.config import Settings
from opsdesk.jobs.runner import run_pending
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Message, Ticket
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_user, staff_actor
from tests.support.http_receiver import HttpReceiver, http_receiver

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def _signed(
    body: dict[str, Any], *, secret: str = SECRET, age_seconds: int = 0
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time()) - age_seconds)
    return raw, {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, timestamp, raw),
        "Content-Type": "application/json",
    }


def _message(event_id: str, ts: str, text: str, thread_ts: str | None = None, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "channel": "C0SHARED",
        "user": "U0CUSTOMER",
        "text": text,
        "ts": ts,
        "channel_type": "channel",
        **extra,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return {
        "token": "legacy",
        "team_id": "T0ACME",
        "api_app_id": "A0APP",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "event": event,
    }


@pytest.fixture
def slack_api(monkeypatch: pytest.MonkeyPatch) -> Any:
    answer = {
        "ok": True,
        "ts": "1700000099.000100",
        "user": {
            "id": "U0CUSTOMER",
            "name": "maria",
            "profile": {"email": "maria@bigcorp.example", "real_name": "Maria Rossi"},
        },
    }
    with http_receiver(answer=answer) as receiver:
        monkeypatch.setenv("OPSDESK_SLACK_API_URL", receiver.url + "/api/")
        yield receiver


@pytest.fixture
def client(
    database: BoundDatabase, tmp_path: Path, slack_api: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    # The job runner builds its settings from the environment: same data directory, same key.
    monkeypatch.setenv("OPSDESK_DATA_DIR", str(tmp_path / "data"))
    settings = Settings(
        data_dir=tmp_path / "data",
        slack_signing_secret=SECRET,
        slack_api_url=slack_api.url + "/api/",
        environment="test",
    )
    with database.transaction() as session:
        connect_channel(
            session,
            SYSTEM,
            settings=settings,
            team_id="T0ACME",
            channel_id="C0SHARED",
            bot_token="xoxb-test-token",
            name="acme-support",
        )
    return TestClient(create_app(settings, database=database))


def _post(client: TestClient, body: dict[str, Any], **options: Any) -> Any:
    raw, headers = _signed(body, **options)
    return client.post("/api/v1/channels/slack/events", content=raw, headers=headers)


def test_url_verification_answers_the_challenge(client: TestClient) -> None:
    response = _post(
        client,
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        },
    )
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_channel_message_opens_a_ticket_and_thread_replies_add_to_it(
    client: TestClient, database: BoundDatabase, slack_api: HttpReceiver
) -> None:
    first = _post(client, _message("Ev01", "1700000001.000100", "Our SSO is down since 9:00"))
    retry = _post(client, _message("Ev01", "1700000001.000100", "Our SSO is down since 9:00"))
    reply = _post(client, _message("Ev02", "1700000002.000200", "Any news?", thread_ts="1700000001.000100"))
    bot = _post(
        client, _message("Ev03", "1700000003.000300", "I am a bot", bot_id="B0BOT", subtype="bot_message")
    )

    assert first.status_code == 200
    ticket_id = first.json()["ticket_id"]
    assert retry.json()["duplicate"] is True
    assert reply.json()["ticket_id"] == ticket_id
    assert bot.json()["status"] == "ignored"
    # users.info was asked who wrote
    assert any(request.path == "/api/users.info" for request in slack_api.requests)
    with database.transaction(write=False) as session:
        ticket = session.get_one(Ticket, ticket_id)
        assert (ticket.channel, ticket.subject) == ("slack", "Our SSO is down since 9:00")
        assert ticket.requester.primary_email == "maria@bigcorp.example"
        assert ticket.requester.name == "Maria Rossi"
        bodies = session.scalars(
            select(Message.body_text).where(Message.ticket_id == ticket_id).order_by(Message.id)
        )
        assert list(bodies) == ["Our SSO is down since 9:00", "Any news?"]
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_agent_reply_is_posted_into_the_thread(
    client: TestClient, database: BoundDatabase, slack_api: HttpReceiver
) -> None:
    ticket_id = _post(client, _message("Ev10", "1700000010.000100", "Invoices missing")).json()["ticket_id"]
    with database.transaction() as session:
        agent = make_user(session)
        tickets.add_message(
            session,
            staff_actor(agent),
            session.get_one(Ticket, ticket_id),
            body_text="Looking into it now.",
            public=True,
        )
        tickets.add_message(
            session,
            staff_actor(agent),
            session.get_one(Ticket, ticket_id),
            body_text="internal only",
            public=False,
        )
    run_pending(database)

    posts = [request for request in slack_api.requests if request.path == "/api/chat.postMessage"]
    assert len(posts) == 1
    assert posts[0].headers["authorization"] == "Bearer xoxb-test-token"
    form = posts[0].body.decode()
    fields = (
        json.loads(form) if form.startswith("{") else dict(pair.split("=", 1) for pair in form.split("&"))
    )
    assert fields["channel"] == "C0SHARED"
    assert fields["thread_ts"] == "1700000010.000100"
    assert "Looking" in fields["text"]
    with database.transaction(write=False) as session:
        assert session.scalars(select(SlackThread.ticket_id)).all() == [ticket_id]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"secret": "not-the-secret"}, "does not match"),
        ({"age_seconds": 301}, "older than five minutes"),
    ],
)
def test_bad_or_stale_signatures_are_refused(
    client: TestClient, database: BoundDatabase, options: dict[str, Any], reason: str
) -> None:
    response = _post(client, _message("Ev20", "1700000020.000100", "hello"), **options)
    assert response.status_code == 401
    assert reason in response.json()["detail"]
    with database.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(RawInbound)) == 0
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_a_workspace_signing_secret_and_account_mapping(
    database: BoundDatabase, tmp_path: Path, slack_api: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsdesk.tickets.models import Person
    from tests.support.factories import make_account

    monkeypatch.setenv("OPSDESK_DATA_DIR", str(tmp_path / "own"))
    settings = Settings(data_dir=tmp_path / "own", slack_api_url=slack_api.url + "/api/", environment="test")
    with database.transaction() as session:
        account = make_account(session, name="Globex")
        connect_channel(
            session,
            SYSTEM,
            settings=settings,
            team_id="T0GLOBEX",
            channel_id="C0GLOBEX",
            bot_token="xoxb-globex",
            signing_secret="globex-own-signing-secret",
            account_id=account.id,
        )
        account_id = account.id
    client = TestClient(create_app(settings, database=database))  # no installation-wide secret
    body = _message("EvG1", "1700000100.000100", "Invoices are wrong")
    body["team_id"] = "T0GLOBEX"
    body["event"]["channel"] = "C0GLOBEX"

    forged_raw, forged_headers = _signed(body, secret=SECRET)  # another app's secret
    forged = client.post("/api/v1/channels/slack/events", content=forged_raw, headers=forged_headers)
    raw, headers = _signed(body, secret="globex-own-signing-secret")
    accepted = client.post("/api/v1/channels/slack/events", content=raw, headers=headers)

    assert forged.status_code == 401
    assert accepted.status_code == 200, accepted.text
    ticket_id = accepted.json()["ticket_id"]
    with database.transaction(write=False) as session:
        ticket = session.get_one(Ticket, ticket_id)
        assert ticket.account_id == account_id
        assert session.get_one(Person, ticket.requester_id).primary_account_id == account_id
        assert session.scalar(select(func.count()).select_from(RawInbound)) == 1
