"""Job kinds every installation has: ``http.post`` delivers a JSON body to a URL.

The request carries the job's idempotency key in ``Idempotency-Key`` (the convention Stripe,
PagerDuty-style receivers and our own API honour), so a repeat after a crash is dropped by the
receiver. Any answer other than 2xx, or no answer, is a failed attempt and is retried.

Each runner thread keeps one keep-alive connection per receiver (``http.client``: the request
goes out in one write, with ``TCP_NODELAY``), so deliveries to one receiver cost a round trip.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy.orm import Session

from opsdesk import __version__
from opsdesk.jobs.registry import job_handler
from opsdesk.outbox import OutboxJob

TIMEOUT_SECONDS = 10.0
_connections = threading.local()


class DeliveryError(RuntimeError):
    """The receiver did not accept the delivery."""


def _connection(scheme: str, host: str, port: int | None) -> http.client.HTTPConnection:
    pool: dict[tuple[str, str, int | None], http.client.HTTPConnection] | None = getattr(
        _connections, "pool", None
    )
    if pool is None:
        pool = {}
        _connections.pool = pool
    key = (scheme, host, port)
    connection = pool.get(key)
    if connection is None:
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
        pool[key] = connection
    return connection


def _send(
    connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    if connection.sock is None:
        connection.connect()
        opened: socket.socket = connection.sock  # type: ignore[assignment]
        opened.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def post_payload(url: str, body: Any, headers: dict[str, str], idempotency_key: str) -> int:
    """POST ``body`` as JSON; returns the status, raises :class:`DeliveryError` unless 2xx."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeliveryError(f"{url!r} is not an http(s) URL")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    data = orjson.dumps(body)
    all_headers = {
        "Content-Type": "application/json",
        "User-Agent": f"opsdesk/{__version__}",
        **headers,
        "Idempotency-Key": idempotency_key,
    }
    connection = _connection(parts.scheme, parts.hostname, parts.port)
    try:
        status, answer = _send(connection, path, data, all_headers)
    except (http.client.HTTPException, OSError):
        # A keep-alive connection the receiver closed: one fresh try, then it is a failed attempt.
        connection.close()
        try:
            status, answer = _send(connection, path, data, all_headers)
        except (http.client.HTTPException, OSError) as error:
            connection.close()
            raise DeliveryError(f"{url} did not answer: {error}") from error
    if not 200 <= status < 300:
        raise DeliveryError(f"{url} answered {status}: {answer[:200].decode(errors='replace')}")
    return status


@job_handler("http.post")
def deliver_http_post(session: Session, job: OutboxJob) -> None:
    del session
    payload = job.payload
    post_payload(
        str(payload["url"]), payload.get("json"), dict(payload.get("headers") or {}), job.idempotency_key
    )
