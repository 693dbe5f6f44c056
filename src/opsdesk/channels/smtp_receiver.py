"""The built-in SMTP receiver (aiosmtpd): mail for support arrives here over real SMTP.

Invariants: ``250`` is answered only after the raw message is committed (a client that saw 250
may forget the message; one that saw anything else, or nothing, sends it again and the
Message-ID dedupe keeps it single); recipients other than the support and brand addresses (and
``OPSDESK_INBOUND_DOMAINS``) are refused at ``RCPT TO`` with ``550`` and a reason, so it never
relays; mail over the size limit is refused with ``552`` and a reason
(the SIZE extension announces the limit up front); a storage failure answers ``451`` so the
sending server retries. Database work runs in worker threads, never on the event loop.
Processing (parse, thread, ticket) happens after the answer, on one processor thread, so a
sender waits only for the store; what a crash leaves stored but unprocessed is resumed at start.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from opsdesk.channels import inbound_pipeline
from opsdesk.channels.errors import MessageTooLargeError
from opsdesk.channels.recipients import AcceptedRecipients, domains_setting
from opsdesk.channels.service import inbound
from opsdesk.channels.service.brands import brand_addresses
from opsdesk.config import Settings
from opsdesk.db import Database

log = logging.getLogger(__name__)


class InboundProcessor:
    """One thread that processes stored messages in arrival order; ``stop`` drains the queue."""

    _STOP = -1

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings
        # One writer at a time in this process (SQLite has a single writer anyway); storing
        # and processing take turns, so a store never waits behind a long processing batch.
        self.write_lock = threading.Lock()
        self._queue: queue.Queue[int] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self, *, resume: bool = True) -> None:
        self._thread = threading.Thread(target=self._run, args=(resume,), name="opsdesk-inbound", daemon=True)
        self._thread.start()

    def submit(self, raw_inbound_id: int) -> None:
        self._queue.put(raw_inbound_id)

    def _run(self, resume: bool) -> None:
        if resume:
            self._resume()
        while True:
            raw_inbound_id = self._queue.get()
            if raw_inbound_id == self._STOP:
                return
            try:
                with self.write_lock:
                    inbound_pipeline.process(self.database, raw_inbound_id, self.settings)
            except Exception:  # the row stays pending or failed; a later resume retries it
                log.exception("processing inbound email %s failed", raw_inbound_id)

    def _resume(self) -> None:
        """Process what a previous run stored but did not process, one message per lock turn."""
        seen: set[int] = set()
        while True:
            with self.database.transaction(write=False) as session:
                ids = [raw_id for raw_id in inbound.pending_raw_ids(session) if raw_id not in seen]
            if not ids:
                return
            for raw_inbound_id in ids:
                seen.add(raw_inbound_id)
                with self.write_lock:
                    inbound_pipeline.process(self.database, raw_inbound_id, self.settings)

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(self._STOP)
            self._thread.join(timeout=120)
            self._thread = None


class InboundSmtpHandler:
    RECIPIENTS_TTL_SECONDS = 5.0

    def __init__(self, database: Database, settings: Settings, processor: InboundProcessor) -> None:
        self.database = database
        self.settings = settings
        self.processor = processor
        self._recipients: AcceptedRecipients | None = None
        self._recipients_at = 0.0

    def accepted_recipients(self) -> AcceptedRecipients:
        """The support address, the brands' addresses and the inbound domains (brands are read
        again every few seconds, so a new brand is taken without a restart)."""
        now = time.monotonic()
        if self._recipients is None or now - self._recipients_at > self.RECIPIENTS_TTL_SECONDS:
            with self.database.transaction(write=False) as session:
                addresses = [self.settings.support_address, *brand_addresses(session)]
            self._recipients = AcceptedRecipients.of(
                addresses, domains_setting(self.settings.inbound_domains)
            )
            self._recipients_at = now
        return self._recipients

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        del server, session, rcpt_options
        loop = asyncio.get_running_loop()
        try:
            accepted = await loop.run_in_executor(None, self.accepted_recipients)
        except Exception:
            log.exception("reading the accepted recipients failed")
            return "451 4.3.0 Temporary failure; try again later"
        reason = accepted.refusal(address)
        if reason is not None:
            return f"550 5.1.1 {reason}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def _store(self, raw: bytes) -> inbound_pipeline.StoredInbound:
        with self.processor.write_lock:
            return inbound_pipeline.store(self.database, raw, source="smtp", settings=self.settings)

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        del server, session
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # pragma: no cover - decode_data is off
            raw = raw.encode("utf-8", "surrogateescape")
        loop = asyncio.get_running_loop()
        try:
            stored = await loop.run_in_executor(
                None,
                lambda: self._store(bytes(raw)),
            )
        except MessageTooLargeError as error:
            return f"552 5.3.4 Message refused: {error.detail}"
        except Exception:
            log.exception("storing an inbound email failed")
            return "451 4.3.0 Temporary failure storing the message; try again later"
        if stored.status == "pending":
            self.processor.submit(stored.raw_inbound_id)
        return f"250 2.0.0 OK: stored as {stored.raw_inbound_id}"


class SmtpReceiver:
    """An aiosmtpd server on its own thread and event loop; ``port=0`` picks a free port."""

    def __init__(
        self, database: Database, settings: Settings, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.processor = InboundProcessor(database, settings)
        self.handler = InboundSmtpHandler(database, settings, self.processor)
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

    def start(self, *, resume: bool = True) -> SmtpReceiver:
        self.processor.start(resume=resume)
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
        self.processor.stop()

    def __enter__(self) -> SmtpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_in_server(settings: Settings, *, host: str, port: int) -> SmtpReceiver:
    """Start the receiver for ``opsdesk serve --smtp-port``, after finishing what a previous run
    stored but did not process; prints where it listens (port 0 picks a free one)."""
    import sys

    from opsdesk.domains import load_all_models

    # The receiver may process mail before the web app has imported every domain's tables;
    # relationships across domains only resolve once all of them are known.
    load_all_models()
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
