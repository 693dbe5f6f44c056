"""The chat sockets through Starlette's TestClient on the real app (SQLite and PostgreSQL): a
visitor on an allowed site and a signed-in agent talk both ways; a reload resumes the
conversation with its token; a resend is stored once; refused origins, unknown brands, bad tokens
and bad messages get clear error frames and change nothing; the widget's settings answer CORS for
allowed origins only; the ticket page shows the live chat with a reply box."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from opsdesk.auth.models import User
from opsdesk.channels.models import ChatBrand, ChatConversation, RawInbound
from opsdesk.channels.service import chat, chat_presence
from opsdesk.tickets.models import Message, Ticket
from tests.support.databases import BoundDatabase
from tests.support.factories import SYSTEM, make_user, staff_actor
from tests.support.web import app_client, bearer_headers, sign_in

SITE = "https://shop.example"
PASSWORD = "agent-password-123"
VISITOR_WS = "/api/v1/channels/chat/ws?brand=acme"


def _setup(database: BoundDatabase, *, agent_online: bool = True) -> User:
    with database.transaction() as session:
        chat.create_brand(session, SYSTEM, key="acme", name="Acme", allowed_origins=[SITE])
        agent = make_user(session, name="Dana Agent", email="dana@staff.example.com", password=PASSWORD)
        if agent_online:
            chat_presence.set_presence(session, staff_actor(agent), "online")
        return agent


def _next(ws: WebSocketTestSession, kind: str, *, limit: int = 12, **match: object) -> dict[str, Any]:
    """The next frame of ``kind`` matching ``match`` (other frames, such as status updates and the
    echo of one's own messages, are skipped)."""
    for _ in range(limit):
        frame: dict[str, Any] = ws.receive_json()
        if frame["type"] == kind and all(frame.get(key) == value for key, value in match.items()):
            return frame
    raise AssertionError(f"no {kind} frame within {limit} frames")


def _status(ws: WebSocketTestSession, wanted: str, *, limit: int = 12) -> dict[str, Any]:
    """The conversation of the next status frame saying ``wanted``."""
    for _ in range(limit):
        conversation: dict[str, Any] = _next(ws, "status")["conversation"]
        if conversation["status"] == wanted:
            return conversation
    raise AssertionError(f"no {wanted} status within {limit} frames")


def _counts(database: BoundDatabase) -> tuple[int, int, int]:
    with database.transaction(write=False) as session:
        return (
            int(session.scalar(select(func.count()).select_from(ChatConversation)) or 0),
            int(session.scalar(select(func.count()).select_from(RawInbound)) or 0),
            int(session.scalar(select(func.count()).select_from(Message)) or 0),
        )


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> TestClient:
    return app_client(database, tmp_path / "data")


def test_visitor_and_agent_talk_both_ways(database: BoundDatabase, client: TestClient) -> None:
    agent = _setup(database)
    sign_in(client, "dana@staff.example.com", PASSWORD)
    with client.websocket_connect(VISITOR_WS, headers={"origin": SITE}) as visitor:
        visitor.send_json({"type": "hello", "token": None})
        welcome = _next(visitor, "welcome")
        assert (welcome["conversation"], welcome["agents_online"]) == (None, True)
        visitor.send_json({"type": "start", "name": "Kim Lee", "email": "Kim@Customer.example"})
        started = _next(visitor, "started")
        token = started["token"]
        assert started["conversation"]["visitor_email"] == "kim@customer.example"

        with client.websocket_connect("/chat/agent-ws", headers={"origin": "http://testserver"}) as desk:
            desk.send_json({"type": "hello"})
            queue = _next(desk, "queue")
            assert (queue["waiting"], queue["presence"], queue["agents_online"]) == ([], "online", 1)

            visitor.send_json({"type": "message", "client_id": "c-1", "body": "Where is order 88?"})
            ack = _next(visitor, "ack")
            assert (ack["client_id"], ack["duplicate"], ack["conversation"]["status"]) == (
                "c-1",
                False,
                "waiting",
            )
            waiting = _status(desk, "waiting")
            assert (waiting["status"], waiting["visitor_name"]) == ("waiting", "Kim Lee")
            conversation_id = waiting["id"]

            desk.send_json({"type": "open", "conversation_id": conversation_id})
            transcript = _next(desk, "transcript")
            assert [(item["from"], item["body"]) for item in transcript["messages"]] == [
                ("visitor", "Where is order 88?")
            ]
            desk.send_json({"type": "accept", "conversation_id": conversation_id})
            accepted = _status(desk, "active")
            assert (accepted["status"], accepted["agent_name"]) == ("active", "Dana Agent")
            assert _status(visitor, "active")["agent_name"] == "Dana Agent"

            desk.send_json(
                {
                    "type": "reply",
                    "conversation_id": conversation_id,
                    "client_id": "a-1",
                    "body": "On its way!",
                }
            )
            assert _next(desk, "ack", client_id="a-1")["message_id"] > 0
            reply = _next(visitor, "message", client_id="a-1")
            assert (reply["from"], reply["author"], reply["body"]) == ("agent", "Dana Agent", "On its way!")

            visitor.send_json({"type": "message", "client_id": "c-2", "body": "Thanks"})
            seen = _next(desk, "message", client_id="c-2")
            assert (seen["from"], seen["body"]) == ("visitor", "Thanks")
            assert _next(visitor, "ack", client_id="c-2")["duplicate"] is False

    with database.transaction(write=False) as session:
        conversation = session.get_one(ChatConversation, conversation_id)
        ticket = session.get_one(Ticket, conversation.ticket_id)
        assert (ticket.channel, ticket.assignee_id, ticket.requester.primary_email) == (
            "chat",
            agent.id,
            "kim@customer.example",
        )
        bodies = session.scalars(
            select(Message.body_text)
            .where(Message.ticket_id == ticket.id, Message.is_public.is_(True))
            .order_by(Message.id)
        ).all()
        assert list(bodies) == ["Where is order 88?", "On its way!", "Thanks"]
        # the agent's page closed: they are offline for chat
        assert chat_presence.presence_of(session, agent.id) == "offline"

    # a reload: the widget says hello with its stored token and gets the conversation back
    with client.websocket_connect(VISITOR_WS, headers={"origin": SITE}) as visitor:
        visitor.send_json({"type": "hello", "token": token})
        resumed = _next(visitor, "welcome")
        assert resumed["conversation"]["id"] == conversation_id
        assert [item["body"] for item in resumed["messages"]] == [
            "Where is order 88?",
            "On its way!",
            "Thanks",
        ]
        # a resend after a lost acknowledgement is stored once
        visitor.send_json({"type": "message", "client_id": "c-2", "body": "Thanks"})
        assert _next(visitor, "ack")["duplicate"] is True
    assert _counts(database) == (1, 2, 3)


def test_refusals_are_clear_and_change_nothing(database: BoundDatabase, client: TestClient) -> None:
    _setup(database)
    with client.websocket_connect(VISITOR_WS, headers={"origin": "https://evil.example"}) as refused:
        error = refused.receive_json()
        assert (error["type"], error["code"]) == ("error", "origin_not_allowed")
        assert "not enabled on https://evil.example" in error["detail"]
        with pytest.raises(WebSocketDisconnect) as closed:
            refused.receive_json()
        assert closed.value.code == 4403
    with client.websocket_connect("/api/v1/channels/chat/ws?brand=nope", headers={"origin": SITE}) as unknown:
        assert unknown.receive_json()["code"] == "unknown_brand"
        with pytest.raises(WebSocketDisconnect) as closed:
            unknown.receive_json()
        assert closed.value.code == 4404

    with client.websocket_connect(VISITOR_WS, headers={"origin": SITE}) as visitor:
        visitor.send_json({"type": "hello", "token": "forged-token"})
        assert _next(visitor, "error")["code"] == "bad_token"
        visitor.send_json({"type": "message", "client_id": "c-1", "body": "hi"})
        assert _next(visitor, "error")["code"] == "bad_token"
        visitor.send_text("not json")
        assert _next(visitor, "error")["code"] == "bad_frame"
        visitor.send_json({"type": "start", "name": "", "email": "nope"})
        invalid = _next(visitor, "error")
        assert (invalid["code"], [field["location"] for field in invalid["errors"]]) == (
            "invalid_chat",
            [["name"], ["email"]],
        )
        visitor.send_json({"type": "start", "name": "Kim", "email": "kim@customer.example"})
        _next(visitor, "started")
        visitor.send_json({"type": "message", "client_id": "c-1", "body": "   "})
        empty = _next(visitor, "error")
        assert (empty["code"], empty["ref"]) == ("invalid_chat", "c-1")
        visitor.send_json({"type": "message", "client_id": "c-2", "body": "x" * 5001})
        assert "longer than 5000" in _next(visitor, "error")["detail"]
        visitor.send_json({"type": "wave"})
        assert "unknown frame type" in _next(visitor, "error")["detail"]
    assert _counts(database) == (1, 0, 0)

    # the agent socket: only from opsdesk's own pages, only when signed in
    with client.websocket_connect("/chat/agent-ws", headers={"origin": "http://testserver"}) as anonymous:
        assert anonymous.receive_json()["code"] == "not_signed_in"
        with pytest.raises(WebSocketDisconnect) as closed:
            anonymous.receive_json()
        assert closed.value.code == 4401
    sign_in(client, "dana@staff.example.com", PASSWORD)
    with client.websocket_connect("/chat/agent-ws", headers={"origin": SITE}) as cross_site:
        assert cross_site.receive_json()["code"] == "origin_not_allowed"


def test_offline_visitor_is_told_and_the_ticket_is_answered_by_email(
    database: BoundDatabase, client: TestClient
) -> None:
    _setup(database, agent_online=False)
    with client.websocket_connect(VISITOR_WS, headers={"origin": SITE}) as visitor:
        visitor.send_json({"type": "hello"})
        assert _next(visitor, "welcome")["agents_online"] is False
        visitor.send_json({"type": "start", "name": "Kim", "email": "kim@customer.example"})
        _next(visitor, "started")
        visitor.send_json({"type": "message", "client_id": "c-1", "body": "Anyone?"})
        assert _next(visitor, "ack")["conversation"]["status"] == "offline"


def test_widget_settings_answer_cors_for_allowed_origins_only(
    database: BoundDatabase, client: TestClient
) -> None:
    _setup(database)
    allowed = client.get("/api/v1/channels/chat/brands/acme", headers={"origin": SITE})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == SITE
    assert allowed.json() == {
        "brand": "acme",
        "name": "Acme",
        "greeting": "Hi! How can we help?",
        "agents_online": True,
    }
    refused = client.get("/api/v1/channels/chat/brands/acme", headers={"origin": "https://evil.example"})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in refused.headers
    assert client.get("/api/v1/channels/chat/brands/nope", headers={"origin": SITE}).status_code == 404
    preflight = client.options("/api/v1/channels/chat/brands/acme", headers={"origin": SITE})
    assert (preflight.status_code, preflight.headers["access-control-allow-origin"]) == (204, SITE)

    script = client.get("/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "data-brand" in script.text
    assert "/api/v1/channels/chat/ws" in script.text


def test_ticket_page_shows_the_live_chat_and_its_reply_box(
    database: BoundDatabase, client: TestClient
) -> None:
    agent = _setup(database)
    with database.transaction() as session:
        brand = chat.brand_for_origin(session, "acme", SITE)
        conversation = chat.start_conversation(
            session, brand, name="Kim", email="kim@customer.example", origin=SITE, client_address="t"
        ).conversation
        stored = chat.store_visitor_message(session, conversation, client_id="c-1", body="Help with login")
    with database.transaction() as session:
        chat.process_visitor_message(session, stored.raw_inbound_id)
        ticket_id = session.get_one(ChatConversation, conversation.id).ticket_id
    csrf = sign_in(client, "dana@staff.example.com", PASSWORD)

    page = client.get(f"/tickets/{ticket_id}")
    assert page.status_code == 200
    assert 'id="panel-chat"' in page.text
    assert "Live chat" in page.text
    assert "Kim &lt;kim@customer.example&gt;. The customer is waiting for an agent." in page.text
    form_id = re.search(r'name="client_id" value="([0-9a-f]+)"', page.text)
    assert form_id is not None

    accepted = client.post(f"/chat/conversations/{conversation.id}/accept", data={"csrf_token": csrf})
    assert (accepted.status_code, accepted.headers["location"]) == (303, f"/tickets/{ticket_id}")
    for _ in range(2):  # a double submit of the same form is stored once
        replied = client.post(
            f"/chat/conversations/{conversation.id}/reply",
            data={"csrf_token": csrf, "client_id": form_id.group(1), "body": "Try resetting it"},
        )
        assert replied.status_code == 303
    refused = client.post(
        f"/chat/conversations/{conversation.id}/reply",
        data={"csrf_token": csrf, "client_id": "x-2", "body": " "},
    )
    assert refused.status_code == 422
    assert (
        client.post(f"/chat/conversations/{conversation.id}/reply", data={"body": "no csrf"}).status_code
        == 403
    )
    with database.transaction(write=False) as session:
        replies = session.scalars(
            select(Message.body_text).where(Message.ticket_id == ticket_id, Message.author_kind == "staff")
        ).all()
        assert list(replies) == ["Try resetting it"]
        assert session.get_one(Ticket, ticket_id).assignee_id == agent.id

    chat_page = client.get("/chat")
    assert chat_page.status_code == 200
    assert "My active chats" in chat_page.text
    assert "Kim: Try resetting it" in chat_page.text


def test_admins_manage_brands_and_origins(database: BoundDatabase, client: TestClient) -> None:
    with database.transaction() as session:
        admin = make_user(session, role="admin", email="ada@staff.example.com", password=PASSWORD)
        agent = make_user(session, role="agent")
        admin_headers = bearer_headers(session, admin)
        agent_headers = bearer_headers(session, agent)
    body = {
        "key": "acme",
        "name": "Acme",
        "allowed_origins": ["https://Shop.example/", "http://localhost:3000"],
    }

    refused = client.post("/api/v1/channels/chat/brands", json=body, headers=agent_headers)
    assert refused.status_code == 403
    invalid = client.post(
        "/api/v1/channels/chat/brands",
        json={**body, "allowed_origins": ["shop.example"]},
        headers=admin_headers,
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["location"][:1] == ["allowed_origins"]
    assert client.get("/api/v1/channels/chat/brands", headers=admin_headers).json() == []

    created = client.post("/api/v1/channels/chat/brands", json=body, headers=admin_headers)
    assert created.status_code == 201
    brand = created.json()
    assert brand["allowed_origins"] == ["http://localhost:3000", "https://shop.example"]
    assert (
        brand["snippet"] == '<script src="http://127.0.0.1:8000/widget.js" data-brand="acme" async></script>'
    )
    duplicate = client.post("/api/v1/channels/chat/brands", json=body, headers=admin_headers)
    assert duplicate.status_code == 422

    changed = client.put(
        f"/api/v1/channels/chat/brands/{brand['id']}/origins",
        json={"allowed_origins": ["https://new.example"]},
        headers=admin_headers,
    )
    assert changed.json()["allowed_origins"] == ["https://new.example"]
    assert (
        client.get(
            "/api/v1/channels/chat/brands/acme", headers={"origin": "https://shop.example"}
        ).status_code
        == 403
    )

    csrf = sign_in(client, "ada@staff.example.com", PASSWORD)
    page = client.get("/admin/chat")
    assert page.status_code == 200
    assert "data-brand=&#34;acme&#34;" in page.text
    bad = client.post(
        "/admin/chat", data={"csrf_token": csrf, "key": "Bad Key", "name": "X", "origins": "nope"}
    )
    assert bad.status_code == 422
    assert "lowercase letters, digits and dashes" in bad.text
    good = client.post(
        "/admin/chat",
        data={"csrf_token": csrf, "key": "beta", "name": "Beta", "origins": "https://beta.example\n"},
    )
    assert (good.status_code, good.headers["location"]) == (303, "/admin/chat?saved=beta")
    with database.transaction(write=False) as session:
        assert [item.key for item in session.scalars(select(ChatBrand).order_by(ChatBrand.key))] == [
            "acme",
            "beta",
        ]
