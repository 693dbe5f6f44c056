"""End-to-end harness: the real ``opsdesk serve`` in a subprocess on a free port with a fresh
SQLite database in a temporary directory, driven by Debian's Chromium through Playwright.

The database is migrated and seeded (a small demo company plus a known staff login) before the
server starts; the server is ready when ``GET /api/v1/health`` answers 200. Playwright never
downloads a browser: it launches ``/usr/bin/chromium`` (installed by scripts/ensure-browser.sh).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from opsdesk import migrate
from opsdesk.auth import service as auth_service
from opsdesk.auth.actor import Actor
from opsdesk.db import Database
from opsdesk.demo.context import SeedOptions
from opsdesk.demo.seeder import seed_company
from opsdesk.tickets import service as tickets_service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
AGENT_EMAIL = "e2e.agent@example.com"
AGENT_PASSWORD = "e2e-password-123"
STARTUP_SECONDS = 180  # the shared machine can take minutes to import the app under load


@dataclass(frozen=True, slots=True)
class RunningServer:
    base_url: str
    database_url: str
    data_dir: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _prepare(database_url: str) -> None:
    migrate.upgrade(database_url)
    database = Database(database_url)
    try:
        with database.transaction() as session:
            seed_company(session, SeedOptions(tickets=60, days=14, seed=5))
            # The seed's tickets are placed relative to now, and at some hours all 60 are solved
            # or closed: a few that just arrived keep "All unsolved" from being empty.
            for number in range(3):
                tickets_service.create_ticket(
                    session,
                    Actor.system("e2e setup"),
                    tickets_service.NewTicket(
                        subject=f"Sync stopped after the update ({number + 1})",
                        body_text="Since this morning nothing syncs between my laptop and my phone.",
                        requester_email=f"e2e.customer{number}@example.org",
                    ),
                )
            auth_service.create_user(
                session,
                Actor.system("e2e setup"),
                email=AGENT_EMAIL,
                name="Erin Tester",
                role="agent",
                password=AGENT_PASSWORD,
            )
    finally:
        database.dispose()


def _wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"opsdesk serve exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"opsdesk serve did not become healthy: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp("e2e-data")
    database_url = f"sqlite:///{data_dir / 'opsdesk.db'}"
    _prepare(database_url)
    port = _free_port()
    log = data_dir / "server.log"
    environment = {
        **os.environ,
        "OPSDESK_DATA_DIR": str(data_dir),
        "OPSDESK_DATABASE_URL": database_url,
        "OPSDESK_ENVIRONMENT": "test",
    }
    executable = str(Path(sys.executable).parent / "opsdesk")
    command = [executable, "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base_url, process, log)
        yield RunningServer(base_url, database_url, data_dir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        context.close()
