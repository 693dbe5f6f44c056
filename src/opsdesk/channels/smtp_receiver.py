"""The built-in SMTP receiver (aiosmtpd): mail for support arrives here over real SMTP.

Invariants: ``250`` is answered only after the raw message is committed (a client that saw 250
may forget the message; one that saw anything else, or nothing, sends it again and the
Message-ID dedupe keeps it single); mail over the size limit is refused with ``552`` and a reason
(the SIZE extension announces the limit up front); a storage failure answers ``451`` so the
sending server retries. Database work runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from opsdesk.channels import inbound_pipeline
from opsdesk.channels.errors import MessageTooLargeError
from opsdesk.config import Settings
from opsdesk.db import Database

log = logging.getLogger(__name__)


class InboundSmtpHandler:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        del server, session
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                None,
                lambda: inbound_pipeline.ingest_email(
                    self.database, bytes(raw), source="smtp", settings=self.settings
                ),
            )
        except MessageTooLargeError as error:
            return f"552 5.3.4 Message refused: {error.detail}"
        except Exception:
            log.exception("storing an inbound email failed")
            return "451 4.3.0 Temporary failure storing the message; try again later"
        return f"250 2.0.0 OK: stored as {result.raw_inbound_id}"


class SmtpReceiver:
    """An aiosmtpd server on its own thread and event loop; ``port=0`` picks a free port."""

    def __init__(
        self, database: Database, settings: Settings, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.handler = InboundSmtpHandler(database, settings)
        self.settings = settings
        self.host = host
        self.requested_port = port
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _factory(self) -> SMTP:
        return SMTP(
            self.handler,
            data_size_limit=self.settings.inbound_email_max_bytes,
            hostname="opsdesk",
            ident="opsdesk ESMTP",
        )

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                loop.create_server(self._factory, host=self.host, port=self.requested_port)
            )
        except BaseException as error:
            self._error = error
            self._ready.set()
            loop.close()
            return
        self._server = server
        sockets: Any = server.sockets
        self.port = int(sockets[0].getsockname()[1])
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            loop.run_until_complete(server.wait_closed())
            loop.close()

    def start(self) -> SmtpReceiver:
        self._thread = threading.Thread(target=self._run, name="opsdesk-smtp", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> SmtpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_server(settings: Settings, *, host: str, port: int) -> SmtpReceiver:
    """Start the receiver for ``opsdesk serve --smtp-port``, after finishing what a previous run
    stored but did not process; prints where it listens (port 0 picks a free one)."""
    import sys

    database = Database(settings.resolved_database_url)
    receiver = SmtpReceiver(database, settings, host=host, port=port).start()
    resumer = threading.Thread(
        target=inbound_pipeline.resume_pending,
        args=(database, settings),
        name="opsdesk-smtp-resume",
        daemon=True,
    )
    resumer.start()
    print(f"opsdesk: SMTP receiver listening on {host}:{receiver.port}", file=sys.stderr, flush=True)
    return receiver
