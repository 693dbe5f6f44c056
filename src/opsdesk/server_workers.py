"""Serving with several worker processes: the parent accepts every connection and deals it to the
ready worker that holds the fewest.

A worker serves a keep-alive connection for as long as the client keeps it, and requests on it
queue in that worker's write lane (:mod:`opsdesk.web.write_lane`) even when another worker is
idle. So how connections are spread decides the latency of the busiest share:

- Uvicorn's own workers share one listening socket, and whichever worker's event loop wakes
  first accepts every connection that is waiting: `opsdesk bench api` found all 16 of its
  connections on one of two workers.
- One ``SO_REUSEPORT`` socket per worker (what this module did before) lets the kernel pick a
  worker by a hash of each connection's addresses: 16 connections over two workers split 8/8
  only one time in five, and 5/11 or worse one time in five, when the busier worker's requests
  wait twice as long as the other's.

Here the parent owns the only listening socket. It accepts each connection and passes the socket
to a worker over a Unix ``SOCK_SEQPACKET`` pair (``SCM_RIGHTS``), choosing the worker that is
ready (it has started the app) and holds the fewest open connections, the earliest dealt on a
tie. Each worker says on the same pair when it is ready and when a connection closed, so the
parent's counts follow the workers'. A burst of 16 connections splits 8/8.

The parent starts the workers, starts again one that dies (its queued connections are reset, as
a restart resets them), and stops them all on SIGINT or SIGTERM. Where passing sockets does not
exist, Uvicorn's workers serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import selectors
import signal
import socket
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)

APP = "opsdesk.app:create_app"
# A worker that dies is started again after this pause (no tight loop if it cannot start).
RESTART_PAUSE_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 30.0
# How often the parent looks at its workers when no connection arrives.
WATCH_SECONDS = 0.2
LISTEN_BACKLOG = 2048

# What a worker tells the parent, one byte per message.
READY, CLOSED = b"r", b"c"
# What the parent sends with each connection it deals.
CONNECTION = b"s"


def dealing_supported() -> bool:
    return hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX") and hasattr(socket, "SOCK_SEQPACKET")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket of ``host:port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    return listener


# ---------------------------------------------------------------- the worker


class DealtServer(uvicorn.Server):
    """Uvicorn serving the connections the parent passes on ``inbox`` instead of a listening
    socket of its own; it reports on ``inbox`` when it is ready and each time a connection
    closes."""

    def __init__(self, config: uvicorn.Config, inbox: socket.socket) -> None:
        super().__init__(config)
        self.inbox = inbox
        self._loop: asyncio.AbstractEventLoop | None = None
        self._protocol_class: Any = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        del sockets
        # No listening socket: Uvicorn starts the app (lifespan) and its state, nothing else.
        await super().startup(sockets=[])
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._protocol_class = _counted(self.config.http_protocol_class, self._closed)
        self.inbox.setblocking(False)
        loop.add_reader(self.inbox.fileno(), self._receive)
        self._tell(READY)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.inbox.fileno())
        await super().shutdown(sockets)

    def _protocol(self) -> asyncio.Protocol:
        # As Uvicorn's own startup makes the protocol of each accepted connection.
        protocol: asyncio.Protocol = self._protocol_class(
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            _loop=self._loop,
        )
        return protocol

    def _receive(self) -> None:
        assert self._loop is not None
        while True:
            try:
                message, descriptors, _flags, _address = socket.recv_fds(self.inbox, 16, 4)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message, descriptors = b"", []
            if not message and not descriptors:
                # The parent is gone: nobody deals connections any more, so stop.
                self._loop.remove_reader(self.inbox.fileno())
                self.should_exit = True
                return
            for descriptor in descriptors:
                connection = socket.socket(fileno=descriptor)
                self._loop.create_task(self._serve_connection(connection))

    async def _serve_connection(self, connection: socket.socket) -> None:
        assert self._loop is not None
        try:
            await self._loop.connect_accepted_socket(self._protocol, connection)
        except OSError:
            connection.close()
            self._closed()

    def _closed(self) -> None:
        self._tell(CLOSED)

    def _tell(self, message: bytes) -> None:
        # The parent may be gone (it recounts a worker it starts again).
        with contextlib.suppress(OSError):
            self.inbox.send(message)


def _counted(protocol_class: Any, on_closed: Any) -> Any:
    """``protocol_class`` calling ``on_closed`` once its connection is lost."""

    def connection_lost(self: Any, exception: Exception | None) -> None:
        try:
            protocol_class.connection_lost(self, exception)
        finally:
            on_closed()

    return type(f"Counted{protocol_class.__name__}", (protocol_class,), {"connection_lost": connection_lost})


def _worker(inbox: socket.socket, options: dict[str, Any]) -> None:
    config = uvicorn.Config(APP, factory=True, **options)
    DealtServer(config, inbox).run()


# ---------------------------------------------------------------- the parent


@dataclass
class _Worker:
    process: BaseProcess
    channel: socket.socket
    ready: bool = False
    open_connections: int = 0
    dealt: int = 0
    # The worker's end of the channel closed: it is exiting (the watch starts another).
    gone: bool = False


def choose(workers: list[_Worker]) -> list[_Worker]:
    """The workers to offer a connection to, best first: ready ones before starting ones, fewer
    open connections first, then the one dealt to longest ago."""
    return sorted(workers, key=lambda worker: (not worker.ready, worker.open_connections, worker.dealt))


def serve(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Run ``workers`` server processes on ``host:port`` until SIGINT or SIGTERM."""
    if workers <= 1 or not dealing_supported():
        uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, **options)
        return
    # Bound here, in this process, so a taken address fails now with the OS's reason.
    listener = bind(host, port)
    listener.listen(LISTEN_BACKLOG)
    listener.setblocking(False)
    context = multiprocessing.get_context("spawn")
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    stopping = False
    deals = 0

    def stop(signal_number: int, frame: FrameType | None) -> None:
        del signal_number, frame
        nonlocal stopping
        stopping = True

    def start() -> _Worker:
        channel, inbox = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = context.Process(target=_worker, args=(inbox, options), name="opsdesk-server-worker")
        process.start()
        inbox.close()
        channel.setblocking(False)
        worker = _Worker(process, channel)
        selector.register(channel, selectors.EVENT_READ, worker)
        return worker

    def retire(worker: _Worker) -> None:
        if not worker.gone:
            selector.unregister(worker.channel)
        worker.channel.close()

    def hear(worker: _Worker) -> None:
        while True:
            try:
                message = worker.channel.recv(16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message = b""
            if not message:
                # The worker is exiting: deal it nothing more; the watch below starts another.
                worker.gone, worker.ready = True, False
                selector.unregister(worker.channel)
                return
            if message == READY:
                worker.ready = True
            elif message == CLOSED:
                worker.open_connections = max(0, worker.open_connections - 1)

    def deal(connection: socket.socket) -> None:
        nonlocal deals
        try:
            for worker in choose([worker for worker in running if not worker.gone]):
                try:
                    socket.send_fds(worker.channel, [CONNECTION], [connection.fileno()])
                except OSError:
                    continue  # dead, or its queue is full: the next one
                deals += 1
                worker.open_connections += 1
                worker.dealt = deals
                return
            logger.warning("no server worker took a connection; it is closed")
        finally:
            connection.close()  # the worker holds its own copy now

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    running = [start() for _ in range(workers)]
    try:
        while not stopping:
            for key, _events in selector.select(WATCH_SECONDS):
                if key.fileobj is listener:
                    while True:
                        try:
                            connection, _address = listener.accept()
                        except (BlockingIOError, InterruptedError):
                            break
                        except OSError as error:  # out of descriptors, say: try again later
                            logger.warning("accept failed: %s", error)
                            break
                        deal(connection)
                else:
                    hear(key.data)
            for index, worker in enumerate(running):
                if not worker.process.is_alive() and not stopping:
                    logger.warning(
                        "server worker %s exited (%s); starting another",
                        worker.process.pid,
                        worker.process.exitcode,
                    )
                    retire(worker)
                    time.sleep(RESTART_PAUSE_SECONDS)
                    running[index] = start()
    finally:
        selector.unregister(listener)
        listener.close()  # no new connections while the workers finish theirs
        for worker in running:
            if worker.process.is_alive():
                worker.process.terminate()  # SIGTERM: Uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for worker in running:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            retire(worker)
        selector.close()
        for number, handler in previous.items():
            signal.signal(number, handler)
