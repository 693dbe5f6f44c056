"""Fault test: the server is killed (SIGKILL) while 1,000 emails arrive over SMTP; after a restart
the client resends every email it did not see accepted. Every email ends up on exactly one ticket,
none twice.

This test runs the real ``opsdesk serve --smtp-port 0`` process on its own SQLite file (a process
that is killed cannot share the suite's rolled-back transaction).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import func, select

from opsdesk import migrate
from opsdesk.channels.models import RawInbound
from opsdesk.db import Database
from opsdesk.tickets.models import Message, Ticket

TOTAL = 1_000
KILL_AFTER = 400


def _email(number: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"sender{number}@crash.example"
    message["To"] = "support@example.com"
    message["Subject"] = f"Crash test {number}"
    message["Message-ID"] = f"<crash-{number}@crash.example>"
    message.set_content(f"Email number {number}.")
    return message.as_bytes()


def _start_server(root: Path, url: str) -> tuple[subprocess.Popen[bytes], int]:
    environment = {
        **os.environ,
        "OPSDESK_DATA_DIR": str(root / "data"),
        "OPSDESK_RUN_JOBS_IN_PROCESS": "false",
        "OPSDESK_EMAIL_THROTTLE_COUNT": "100000",
    }
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "opsdesk"),
            "serve",
            "--db",
            url,
            "--port",
            "0",
            "--smtp-port",
            "0",
            "--no-migrate",
        ],
        env=environment,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline().decode()
        found = re.search(r"SMTP receiver listening on [\d.]+:(\d+)", line)
        if found:
            # keep draining stderr so the server never blocks on a full pipe
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, int(found.group(1))
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError("the server did not start its SMTP receiver")


def _send_all(port: int, numbers: list[int], on_accepted: threading.Event | None = None) -> set[int]:
    """Send each email; return the numbers the client did NOT see accepted."""
    failed: set[int] = set()
    client: smtplib.SMTP | None = None
    accepted = 0
    for number in numbers:
        try:
            if client is None:
                client = smtplib.SMTP("127.0.0.1", port, timeout=30)
            client.sendmail(f"sender{number}@crash.example", ["support@example.com"], _email(number))
            accepted += 1
            if on_accepted is not None and accepted == KILL_AFTER:
                on_accepted.set()
        except (OSError, smtplib.SMTPException):
            failed.add(number)
            client = None
    if client is not None:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.quit()
    return failed


def test_kill_9_while_mail_arrives_then_resend_what_failed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    migrate.upgrade(url)
    server, port = _start_server(tmp_path, url)
    reached = threading.Event()
    killer = threading.Thread(target=lambda: (reached.wait(120), os.kill(server.pid, signal.SIGKILL)))
    killer.start()
    try:
        failed = _send_all(port, list(range(TOTAL)), reached)
    finally:
        killer.join()
        server.wait(timeout=30)
    assert server.returncode == -signal.SIGKILL
    assert failed, "the kill happened while mail was still arriving"

    server, port = _start_server(tmp_path, url)
    try:
        # like a real sending server: resend until accepted (a busy machine may time a try out)
        remaining = failed
        for _round in range(5):
            remaining = _send_all(port, sorted(remaining))
            if not remaining:
                break
            time.sleep(1)
        assert remaining == set()
        database = Database(url)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with database.transaction(write=False) as session:
                pending = session.scalar(select(func.count()).where(RawInbound.status == "pending"))
            if pending == 0:
                break
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

    with database.transaction(write=False) as session:
        external_ids = session.scalars(select(Message.external_id)).all()
        assert sorted(external_ids) == sorted(f"crash-{number}@crash.example" for number in range(TOTAL))
        assert session.scalar(select(func.count()).select_from(Ticket)) == TOTAL
        grouped = session.execute(select(RawInbound.status, func.count()).group_by(RawInbound.status)).all()
        statuses = {str(status): int(count) for status, count in grouped}
        assert statuses == {"processed": TOTAL}
        subjects = session.scalars(select(Ticket.subject)).all()
        assert len(set(subjects)) == TOTAL
    database.dispose()
