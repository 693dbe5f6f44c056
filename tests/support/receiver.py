"""A real local HTTP receiver for outbound deliveries (webhooks, paging, the job runner).

It listens on an ephemeral port, records every request (path, headers, JSON body) and, like a
well-behaved receiver, applies each ``Idempotency-Key`` once: ``applied`` holds the keys in the
order their effect happened, ``requests`` every delivery including repeats.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    status: int = 200
    hold: threading.Event | None = None  # when set up, requests wait until it is set
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def keys(self) -> list[str]:
        with self.lock:
            return [request.headers.get("idempotency-key", "") for request in self.requests]

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


def start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {name.lower(): value for name, value in self.headers.items()}
            with receiver.lock:
                receiver.requests.append(Received(self.path, headers, body))
            receiver.arrived.set()
            if receiver.hold is not None:
                receiver.hold.wait(30)
            key = headers.get("idempotency-key", "")
            with receiver.lock:
                if receiver.status < 300 and key not in receiver.applied:
                    receiver.applied.append(key)
            answer = b'{"ok": true}'
            self.send_response(receiver.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver
