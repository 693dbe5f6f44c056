"""Wake-ups and the schedule lock shared by several workers through Redis.

Without a broker a runner polls the outbox and is woken in-process when its own process commits
jobs. With ``OPSDESK_BROKER_URL=redis://…`` every process announces committed jobs on a Redis
channel and every worker listens there, so a job written by a web server is picked up by some
worker at once. Which worker runs it is still decided by the database row lock: Redis only wakes
workers up and keeps all but one away from the schedule table at a time, so nothing runs twice
even if Redis drops a message (the poll catches it) or restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from typing import Any

import redis


class LocalWakeup:
    """In-process wake-up: a threading event set when this process commits jobs."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def announce(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()

    def acquire_schedule_lock(self, worker_id: str, seconds: float) -> bool:
        del worker_id, seconds
        return True

    def close(self) -> None:
        self._event.set()


class RedisWakeup(LocalWakeup):
    """Wake-ups over a Redis channel named after the database, plus a short schedule lock."""

    def __init__(self, broker_url: str, database_url: str) -> None:
        super().__init__()
        namespace = hashlib.sha256(database_url.encode()).hexdigest()[:16]
        self.channel = f"opsdesk:jobs:{namespace}:wake"
        self.lock_key = f"opsdesk:jobs:{namespace}:schedule-lock"
        self._client: Any = redis.Redis.from_url(broker_url, socket_timeout=5, socket_connect_timeout=5)
        self._client.ping()  # fail at start, with a clear error, rather than at the first job
        self._pubsub: Any = None
        self._listener: threading.Thread | None = None
        self._closing = threading.Event()

    def announce(self) -> None:
        super().announce()
        # Workers poll anyway: a lost wake-up only delays delivery to the next poll.
        with contextlib.suppress(redis.RedisError):
            self._client.publish(self.channel, b"1")

    def listen(self) -> None:
        """Start a thread that turns messages on the channel into local wake-ups."""
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(self.channel)
        self._listener = threading.Thread(target=self._listen, name="opsdesk-jobs-redis", daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        while not self._closing.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.5)
            except (redis.RedisError, ValueError, AttributeError):
                if self._closing.is_set():
                    return
                self._closing.wait(1.0)
                continue
            if message is not None:
                self._event.set()

    def acquire_schedule_lock(self, worker_id: str, seconds: float) -> bool:
        try:
            return bool(self._client.set(self.lock_key, worker_id, nx=True, px=int(seconds * 1000)))
        except redis.RedisError:
            return True  # the database row lock still keeps schedules single

    def close(self) -> None:
        self._closing.set()
        super().close()
        if self._listener is not None:
            self._listener.join(timeout=2)
        if self._pubsub is not None:
            self._pubsub.close()
        self._client.close()
