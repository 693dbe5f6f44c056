"""Serving with several worker processes, each accepting connections on a socket of its own.

Uvicorn's own workers share one listening socket, and whichever worker's event loop wakes first
accepts every connection that is waiting. A burst of connections (a client's pool opening a
dozen at once) then lands on one worker while the others idle: `opsdesk bench api` found all 16 of
its connections on one of two workers, so one process (and one core) served the whole load.

Here each worker binds its own socket to the address with ``SO_REUSEPORT``, and the kernel spreads
new connections over the workers' sockets (by a hash of each connection's addresses), whatever
the workers are busy with. The parent starts the workers, starts again one that dies, and stops
them all on SIGINT or SIGTERM. Where ``SO_REUSEPORT`` does not exist, Uvicorn's workers serve.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)

APP = "opsdesk.app:create_app"
# A worker that dies is started again after this pause (no tight loop if it cannot start).
RESTART_PAUSE_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 30.0


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to the address that other workers may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    return listener


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    config = uvicorn.Config(APP, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[bind(host, port)])


def serve(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Run ``workers`` server processes on ``host:port`` until SIGINT or SIGTERM."""
    if workers <= 1 or not reuse_port_supported():
        uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, **options)
        return
    # Bound once here so a taken address fails now, in this process, with the OS's reason.
    bind(host, port).close()
    context = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signal_number: int, frame: FrameType | None) -> None:
        del signal_number, frame
        nonlocal stopping
        stopping = True

    def start() -> BaseProcess:
        process = context.Process(target=_worker, args=(host, port, options), name="opsdesk-server-worker")
        process.start()
        return process

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    running = [start() for _ in range(workers)]
    try:
        while not stopping:
            time.sleep(0.2)
            for index, process in enumerate(running):
                if not process.is_alive() and not stopping:
                    logger.warning(
                        "server worker %s exited (%s); starting another", process.pid, process.exitcode
                    )
                    time.sleep(RESTART_PAUSE_SECONDS)
                    running[index] = start()
    finally:
        for process in running:
            if process.is_alive():
                process.terminate()  # SIGTERM: Uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for number, handler in previous.items():
            signal.signal(number, handler)
