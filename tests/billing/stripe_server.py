"""A local HTTP server speaking enough of Stripe's API for the SDK, recording every request.

Started by a test on port 0 (an ephemeral port); the SDK's API base points at it. Responses are
Stripe-shaped JSON objects; ``fail_next`` makes the next request answer with a Stripe error.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class StripeServer:
    base_url: str
    requests: list[Recorded] = field(default_factory=list)
    charges: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    fail_next: dict[str, Any] | None = None

    def posts(self, prefix: str) -> list[Recorded]:
        return [item for item in self.requests if item.method == "POST" and item.path.startswith(prefix)]


def _respond(
    server: StripeServer, method: str, path: str, form: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    if server.fail_next is not None:
        error, server.fail_next = server.fail_next, None
        return 402, {"error": error}
    if method == "POST" and path == "/v1/refunds":
        return 200, {
            "id": f"re_{len(server.requests)}",
            "object": "refund",
            "amount": int(form["amount"]),
            "charge": form["charge"],
            "status": "succeeded",
            "currency": "usd",
        }
    match = re.fullmatch(r"/v1/subscriptions/(sub_\w+)", path)
    if match and method == "GET":
        return 200, {
            "id": match.group(1),
            "object": "subscription",
            "status": "active",
            "items": {
                "object": "list",
                "data": [{"id": "si_123", "object": "subscription_item", "quantity": 10}],
            },
        }
    if match and method == "POST":
        return 200, {"id": match.group(1), "object": "subscription", "status": "active"}
    if match and method == "DELETE":
        return 200, {"id": match.group(1), "object": "subscription", "status": "canceled"}
    if method == "POST" and path == "/v1/files":
        return 200, {"id": "file_evidence_1", "object": "file", "purpose": "dispute_evidence"}
    match = re.fullmatch(r"/v1/disputes/(dp_\w+)", path)
    if match and method == "POST":
        return 200, {"id": match.group(1), "object": "dispute", "status": "under_review"}
    match = re.fullmatch(r"/v1/invoices/(in_\w+)/pay", path)
    if match:
        return 200, {"id": match.group(1), "object": "invoice", "status": "paid", "charge": "ch_paid_1"}
    if method == "GET" and path == "/v1/charges":
        return 200, {"object": "list", "data": server.charges, "has_more": False, "url": "/v1/charges"}
    if method == "GET" and path == "/v1/subscriptions":
        return 200, {
            "object": "list",
            "data": server.subscriptions,
            "has_more": False,
            "url": "/v1/subscriptions",
        }
    return 404, {"error": {"type": "invalid_request_error", "message": f"no route {method} {path}"}}


@contextmanager
def stripe_server() -> Iterator[StripeServer]:
    state = StripeServer(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            content_type = self.headers.get("Content-Type", "")
            form = dict(parse_qsl(query))
            if content_type.startswith("application/x-www-form-urlencoded"):
                form.update(parse_qsl(body.decode()))
            state.requests.append(Recorded(self.command, path, form, dict(self.headers.items()), body))
            status, payload = _respond(state, self.command, path, form)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{len(state.requests)}")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
