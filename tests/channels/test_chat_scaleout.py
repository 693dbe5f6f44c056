"""Scaled out: two ``opsdesk serve`` processes on one database with ``OPSDESK_BROKER_URL`` set to
the local Redis. The visitor's socket is on one server and the agent's on the other; messages
cross in both directions through Redis pub/sub. Also: the in-memory hub and the Redis hub deliver
only to subscribers of the topic."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from opsdesk import migrate
from opsdesk.auth import service as auth_service
from opsdesk.auth.actor import Actor
from opsdesk.auth.sessions import start_session
from opsdesk.channels.chat_fanout import ChatHub, RedisChatHub, Subscription
from opsdesk.channels.service import chat
from opsdesk.db import Database
from opsdesk.web.auth import SESSION_COOKIE
from tests.e2e.conftest import _free_port, _wait_until_healthy

REDIS_URL = os.environ.get("OPSDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SITE = "http://shop.test"


def _next(ws: ClientConnection, kind: str, *, limit: int = 12, **match: object) -> dict[str, Any]:
    for _ in range(limit):
        frame: dict[str, Any] = json.loads(ws.recv(timeout=30))
        if frame["type"] == kind and all(frame.get(key) == value for key, value in match.items()):
            return frame
    raise AssertionError(f"no {kind} frame within {limit} frames")


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    database_url = f"sqlite:///{tmp_path / 'opsdesk.db'}"
    migrate.upgrade(database_url)
    database = Database(database_url)
    try:
        with database.transaction() as session:
            system = Actor.system("tests")
            chat.create_brand(session, system, key="shop", name="Shop", allowed_origins=[SITE])
            agent = auth_service.create_user(
                session,
                system,
                email="dana@staff.example.com",
                name="Dana Agent",
                role="agent",
                password=None,
            )
            secret = start_session(session, agent, max_age=timedelta(hours=1)).secret
    finally:
        database.dispose()
    environment = {
        **os.environ,
        "OPSDESK_DATA_DIR": str(tmp_path / "data"),
        "OPSDESK_DATABASE_URL": database_url,
        "OPSDESK_ENVIRONMENT": "test",
        "OPSDESK_BROKER_URL": REDIS_URL,
    }
    executable = str(Path(sys.executable).parent / "opsdesk")
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for name in ("a", "b"):
            port = _free_port()
            log = tmp_path / f"server-{name}.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [executable, "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=environment,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            processes.append(process)
            urls.append(f"http://127.0.0.1:{port}")
            _wait_until_healthy(urls[-1], process, log)
        yield urls[0], urls[1], secret
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_messages_cross_between_servers_through_redis(two_servers: tuple[str, str, str]) -> None:
    visitor_server, agent_server, secret = two_servers
    with (
        connect(
            agent_server.replace("http://", "ws://") + "/chat/agent-ws",
            origin=Origin(agent_server),
            additional_headers={"Cookie": f"{SESSION_COOKIE}={secret}"},
        ) as desk,
        connect(
            visitor_server.replace("http://", "ws://") + "/api/v1/channels/chat/ws?brand=shop",
            origin=Origin(SITE),
        ) as visitor,
    ):
        desk.send(json.dumps({"type": "hello"}))
        assert _next(desk, "queue")["agents_online"] == 1
        visitor.send(json.dumps({"type": "hello"}))
        assert _next(visitor, "welcome")["agents_online"] is True
        visitor.send(json.dumps({"type": "start", "name": "Kim", "email": "kim@customer.example"}))
        _next(visitor, "started")
        visitor.send(json.dumps({"type": "message", "client_id": "c-1", "body": "Hello from server A"}))
        _next(visitor, "ack")

        waiting = _next(desk, "status")["conversation"]  # heard on server B through Redis
        assert (waiting["status"], waiting["last_message"]) == ("waiting", "Hello from server A")
        desk.send(json.dumps({"type": "open", "conversation_id": waiting["id"]}))
        _next(desk, "transcript")
        desk.send(
            json.dumps({"type": "reply", "conversation_id": waiting["id"], "client_id": "a-1", "body": "Hi!"})
        )
        reply = _next(visitor, "message", client_id="a-1")  # heard on server A through Redis
        assert (reply["from"], reply["author"], reply["body"]) == ("agent", "Dana Agent", "Hi!")

        visitor.send(json.dumps({"type": "message", "client_id": "c-2", "body": "Thanks"}))
        seen = _next(desk, "message", client_id="c-2")
        assert (seen["from"], seen["body"]) == ("visitor", "Thanks")


def _collect(hub: ChatHub, publisher: ChatHub, topic: str, other: str) -> list[dict[str, Any]]:
    async def scenario() -> list[dict[str, Any]]:
        subscription = Subscription(asyncio.Queue(), asyncio.get_running_loop())
        bystander = Subscription(asyncio.Queue(), asyncio.get_running_loop())
        hub.subscribe(topic, subscription)
        hub.subscribe(other, bystander)
        publisher.publish(topic, {"type": "message", "n": 1})
        publisher.publish(topic, {"type": "message", "n": 2})
        received = [
            await asyncio.wait_for(subscription.queue.get(), timeout=10),
            await asyncio.wait_for(subscription.queue.get(), timeout=10),
        ]
        hub.unsubscribe_all(subscription)
        hub.unsubscribe_all(bystander)
        assert bystander.queue.empty()
        assert hub.subscriber_count(topic) == 0
        return received

    # in a thread of its own: a test run may already have an event loop in this one (Playwright)
    result: list[list[dict[str, Any]]] = []
    runner = threading.Thread(target=lambda: result.append(asyncio.run(scenario())))
    runner.start()
    runner.join(timeout=60)
    assert result, "the hub scenario did not finish"
    return result[0]


def test_hubs_deliver_to_the_topic_subscribers_only() -> None:
    local = ChatHub()
    assert _collect(local, local, "ns:conversation:1", "ns:conversation:2") == [
        {"type": "message", "n": 1},
        {"type": "message", "n": 2},
    ]
    listener, sender = RedisChatHub(REDIS_URL), RedisChatHub(REDIS_URL)
    try:
        # wait until Redis has the listener's pattern subscription (it was sent, not yet confirmed)
        deadline = time.monotonic() + 10
        while int(sender._client.execute_command("PUBSUB", "NUMPAT")) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _collect(
            listener, sender, f"t{os.getpid()}:conversation:1", f"t{os.getpid()}:conversation:2"
        ) == [
            {"type": "message", "n": 1},
            {"type": "message", "n": 2},
        ]
    finally:
        listener.close()
        sender.close()
