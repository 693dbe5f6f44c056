"""Job kinds every installation has: ``http.post`` delivers a JSON body to a URL.

The request carries the job's idempotency key in ``Idempotency-Key`` (the convention Stripe,
PagerDuty-style receivers and our own API honour), so a repeat after a crash is dropped by the
receiver. Any answer other than 2xx, or no answer, is a failed attempt and is retried.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
from sqlalchemy.orm import Session

from opsdesk.jobs.registry import job_handler
from opsdesk.outbox import OutboxJob

HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
_clients = threading.local()


def _client() -> httpx.Client:
    # One keep-alive client per runner thread: delivery to the same receiver reuses connections.
    client: httpx.Client | None = getattr(_clients, "client", None)
    if client is None:
        client = httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False)
        _clients.client = client
    return client


def post_payload(url: str, body: Any, headers: dict[str, str], idempotency_key: str) -> httpx.Response:
    response = _client().post(url, json=body, headers={**headers, "Idempotency-Key": idempotency_key})
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")
    return response


@job_handler("http.post")
def deliver_http_post(session: Session, job: OutboxJob) -> None:
    del session
    payload = job.payload
    post_payload(
        str(payload["url"]), payload.get("json"), dict(payload.get("headers") or {}), job.idempotency_key
    )
