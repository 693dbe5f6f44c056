"""Chat fan-out: events (a new message, a status change, presence, typing) to every open chat
connection that follows a topic, in this process or in every ``opsdesk serve`` process.

Invariants: an event is published only after the transaction that stored what it announces has
committed (:func:`publish_after_commit`), so a connection never shows a message that could still
roll back; the database stays the record and fan-out is best effort (a connection that missed an
event catches up from the database when it reconnects). Without a broker the hub delivers in
memory; with ``OPSDESK_BROKER_URL=redis://…`` every publish goes through Redis pub/sub (channel
``opsdesk:chat:<database namespace>:<topic>``) and each process delivers what it hears to its own
connections, so a visitor on one server and an agent on another see each other.

Subscribers are asyncio queues; publishing is thread-safe (services run in worker threads, the
sockets in the event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import Connection, event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Event = dict[str, Any]
_PENDING_KEY = "opsdesk.chat.pending_events"


@dataclass(eq=False, slots=True)
class Subscription:
    """One connection's inbox: events land in ``queue`` on the connection's event loop."""

    queue: asyncio.Queue[Event]
    loop: asyncio.AbstractEventLoop

    def deliver(self, item: Event) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: the connection is gone
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


def namespace_for(database_url: str) -> str:
    """Topics of one database never reach connections of another (tests, several installs)."""
    return hashlib.sha256(database_url.encode()).hexdigest()[:16]


def conversation_topic(namespace: str, conversation_id: int) -> str:
    return f"{namespace}:conversation:{conversation_id}"


def agents_topic(namespace: str) -> str:
    return f"{namespace}:agents"


class ChatHub:
    """In-memory fan-out inside one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, set[Subscription]] = {}

    def subscribe(self, topic: str, subscription: Subscription) -> None:
        with self._lock:
            self._topics.setdefault(topic, set()).add(subscription)

    def unsubscribe(self, topic: str, subscription: Subscription) -> None:
        with self._lock:
            members = self._topics.get(topic)
            if members is not None:
                members.discard(subscription)
                if not members:
                    del self._topics[topic]

    def unsubscribe_all(self, subscription: Subscription) -> None:
        with self._lock:
            for topic in [name for name, members in self._topics.items() if subscription in members]:
                self._topics[topic].discard(subscription)
                if not self._topics[topic]:
                    del self._topics[topic]

    def subscriber_count(self, topic: str) -> int:
        with self._lock:
            return len(self._topics.get(topic, ()))

    def publish(self, topic: str, item: Event) -> None:
        self.deliver_local(topic, item)

    def deliver_local(self, topic: str, item: Event) -> None:
        with self._lock:
            members = list(self._topics.get(topic, ()))
        for member in members:
            member.deliver(item)

    def close(self) -> None:
        return None


class RedisChatHub(ChatHub):
    """Fan-out through Redis pub/sub: every process hears every publish, including its own."""

    PREFIX = "opsdesk:chat:"

    def __init__(self, broker_url: str) -> None:
        super().__init__()
        self._client: Any = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
        self._client.ping()
        self._pubsub: Any = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        self._pubsub.psubscribe(self.PREFIX + "*")
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="opsdesk-chat-redis", daemon=True)
        self._thread.start()

    def publish(self, topic: str, item: Event) -> None:
        try:
            self._client.publish(self.PREFIX + topic, json.dumps(item))
        except redis.RedisError:
            # Redis is down: at least this process's connections get it; others catch up on reconnect.
            log.warning("chat fan-out through Redis failed; delivering locally only", exc_info=True)
            self.deliver_local(topic, item)

    def _listen(self) -> None:
        while not self._closing.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.5)
            except (redis.RedisError, ValueError, AttributeError):
                if self._closing.is_set():
                    return
                self._closing.wait(1.0)
                continue
            if message is None or message.get("type") != "pmessage":
                continue
            channel = (
                message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            )
            try:
                item = json.loads(message["data"])
            except ValueError:
                continue
            self.deliver_local(channel.removeprefix(self.PREFIX), item)

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(redis.RedisError):
            self._pubsub.close()
            self._client.close()


_hubs: dict[str, ChatHub] = {}
_hubs_lock = threading.Lock()
_process_broker: list[str | None] = []  # the broker this process's server uses, once known


def hub_for(broker_url: str | None) -> ChatHub:
    """The process's hub for a broker (one per process; in memory when there is no Redis)."""
    key = broker_url if broker_url and broker_url.startswith(("redis://", "rediss://", "unix://")) else ""
    with _hubs_lock:
        if not _process_broker:
            _process_broker.append(key)
        hub = _hubs.get(key)
        if hub is None:
            hub = RedisChatHub(key) if key else ChatHub()
            _hubs[key] = hub
        return hub


def session_namespace(session: Session) -> str:
    bind = session.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else bind
    return namespace_for(engine.url.render_as_string(hide_password=True))


def publish_after_commit(session: Session, topic: str, item: Event) -> None:
    """Announce ``item`` on ``topic`` once the session's transaction commits (dropped on rollback)."""
    pending: list[tuple[str, Event]] = session.info.setdefault(_PENDING_KEY, [])
    pending.append((topic, item))
    if not event.contains(session, "after_commit", _flush_pending):
        event.listen(session, "after_commit", _flush_pending)
        event.listen(session, "after_rollback", _drop_pending)


def _flush_pending(session: Session) -> None:
    pending: list[tuple[str, Event]] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return
    if _process_broker:
        hub = hub_for(_process_broker[0])
    else:
        from opsdesk.config import Settings

        hub = hub_for(Settings().broker_url)
    for topic, item in pending:
        try:
            hub.publish(topic, item)
        except Exception:  # fan-out must never break the committed work
            log.exception("chat fan-out of %s failed", topic)


def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
