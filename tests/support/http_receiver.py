"""A local HTTP server for tests of outgoing calls: records each request and answers with the
status codes it is told to, in order (the last one repeats)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    url: str = ""
    statuses: list[int] = field(default_factory=lambda: [200])
    answer: dict[str, Any] = field(default_factory=lambda: {"ok": True})
    requests: list[Recorded] = field(default_factory=list)


@contextmanager
def http_receiver(
    statuses: list[int] | None = None, answer: dict[str, Any] | None = None
) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(statuses=list(statuses or [200]), answer=answer or {"ok": True})

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.requests.append(
                Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            index = min(len(receiver.requests) - 1, len(receiver.statuses) - 1)
            payload = json.dumps(receiver.answer).encode()
            self.send_response(receiver.statuses[index])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
