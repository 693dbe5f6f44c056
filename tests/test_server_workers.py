"""``opsdesk serve --workers N``: every worker accepts connections on a socket of its own (a burst
of connections is spread over the workers), a worker that dies is started again, and SIGTERM
stops them all."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdesk import migrate
from tests.e2e.conftest import _free_port, _wait_until_healthy


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _sockets_on(pid: int, port: int, state: str) -> int:
    """TCP sockets on local ``port`` in ``state`` ("01" established, "0A" listening) that this
    process holds (Linux /proc)."""
    inodes = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == state and fields[9] in inodes:
            count += 1
    return count


def _workers(server: subprocess.Popen[bytes], port: int, count: int) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # The spawn start method adds a resource tracker child: workers are the ones serving.
        workers = [
            pid for pid in _children(server.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        workers = [
            pid for pid in workers if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        if len(workers) == count and all(_sockets_on(pid, port, "0A") for pid in workers):
            return workers  # each one listening on its own socket
        time.sleep(0.2)
    raise AssertionError(f"expected {count} workers")


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    database_url = f"sqlite:///{tmp_path / 'opsdesk.db'}"
    migrate.upgrade(database_url)
    port = _free_port()
    environment = {**os.environ, "OPSDESK_DATA_DIR": str(tmp_path / "data"), "OPSDESK_ENVIRONMENT": "test"}
    executable = str(Path(sys.executable).parent / "opsdesk")
    log_path = tmp_path / "server.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [
            executable,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            database_url,
            "--workers",
            "2",
        ],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_healthy(f"http://127.0.0.1:{port}", server, log_path)
        yield server, port, log_path
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        log.close()


def test_a_burst_of_connections_reaches_both_workers(
    two_workers: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    server, port, _ = two_workers
    workers = _workers(server, port, 2)
    # All at once, as a client's pool opens them: the kernel queues them before any is accepted.
    connections = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(32)]
    for connection in connections:
        connection.setblocking(False)
        connection.connect_ex(("127.0.0.1", port))
    for connection in connections:
        select.select([], [connection], [], 10)
        connection.setblocking(True)
    try:
        for connection in connections:
            connection.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: test\r\n\r\n")
        for connection in connections:
            assert connection.recv(64).startswith(b"HTTP/1.1 200")
        held = [_sockets_on(pid, port, "01") for pid in workers]
        # A shared socket lets the first worker awake take the whole burst; with a socket each,
        # the kernel spreads them (all 32 on one of two is a 1 in 2**31 chance).
        assert sum(held) == 32
        assert min(held) > 0
    finally:
        for connection in connections:
            connection.close()


def test_a_dead_worker_is_replaced_and_sigterm_stops_all(
    two_workers: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    server, port, log_path = two_workers
    first, second = _workers(server, port, 2)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while first in _children(server.pid) and time.monotonic() < deadline:
        time.sleep(0.2)  # reaped by the parent when it notices
    workers = _workers(server, port, 2)
    assert second in workers
    assert first not in workers
    _wait_until_healthy(f"http://127.0.0.1:{port}", server, log_path)
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=60) == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
