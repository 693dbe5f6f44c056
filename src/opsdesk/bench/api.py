"""``opsdesk bench api``: the real server under load, measured from a client on loopback.

1. A fresh database: SQLite in a temporary directory, or with ``--database-url`` a new database
   created on that PostgreSQL server (dropped afterwards).
2. Optionally ``--seed-tickets N`` seeded with the demo seeder (search index suspended during the
   load and rebuilt once), for the view and search figures.
3. ``opsdesk serve`` started as a separate process (Uvicorn, ``--workers``) on a free loopback port.
4. Ticket creation over HTTP with token auth at ``--concurrency`` (16), then a view of 50 tickets
   filtered by status and group, and keyword searches, each timed per request.

Prints one JSON object. Targets (issue 2): creation >= 300 tickets/s with p99 <= 100 ms; at
1,000,000 tickets, view p95 <= 50 ms and search p95 <= 200 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from opsdesk.bench.http_load import HttpLoadError, KeepAliveConnection

WORDS = (
    "invoice",
    "refund",
    "charge",
    "login",
    "password",
    "export",
    "billing",
    "plan",
    "upgrade",
    "seats",
    "renewal",
    "error",
    "crash",
    "slow",
    "timeout",
    "api",
    "webhook",
    "integration",
    "report",
    "dashboard",
    "csv",
    "import",
    "sso",
    "saml",
    "mobile",
    "android",
    "ios",
    "email",
    "notification",
    "permission",
    "admin",
    "workspace",
    "delete",
    "account",
    "trial",
    "discount",
    "tax",
    "receipt",
)
SEARCH_WORDS = ("invoice", "refund", "password reset", "export csv", "webhook", "renewal discount", "crash")


@dataclass(slots=True)
class Timings:
    milliseconds: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def percentile(self, fraction: float) -> float:
        if not self.milliseconds:
            return 0.0
        ordered = sorted(self.milliseconds)
        index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
        return round(ordered[index], 2)


def process_tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks
    tree = {root_pid}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                changed = True
    return sum(cpu.get(pid, 0.0) for pid in tree)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _fresh_database(server_url: str | None, directory: Path, existing: str | None = None) -> Iterator[str]:
    if existing is not None:
        yield existing  # the caller's database, already seeded: used as it is and kept
        return
    if server_url is None:
        yield f"sqlite:///{directory / 'bench.db'}"
        return
    import psycopg

    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    name = f"opsdesk_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = plain.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://")
    finally:
        with psycopg.connect(plain, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _prepare(url: str, seed_tickets: int) -> dict[str, Any]:
    """Migrate, seed, and make the bench's admin and token; what the load needs to know."""
    from sqlalchemy import func, select

    from opsdesk import migrate
    from opsdesk.auth import service as auth_service
    from opsdesk.auth.actor import Actor
    from opsdesk.db import Database
    from opsdesk.tickets.models import Ticket

    migrate.upgrade(url)
    database = Database(url)
    started = time.perf_counter()
    try:
        if seed_tickets:
            from opsdesk.demo.bulk import load_transaction
            from opsdesk.demo.context import SeedOptions
            from opsdesk.demo.seeder import seed_company

            # The seeder suspends the keyword index during its load and rebuilds it once.
            with load_transaction(database) as session:
                seed_company(session, SeedOptions(tickets=seed_tickets, days=365, seed=7))
        seed_seconds = time.perf_counter() - started
        with database.transaction() as session:
            actor = Actor.system("bench", via="cli")
            group = auth_service.create_group(session, actor, name=f"Bench {uuid.uuid4().hex[:6]}")
            user = auth_service.create_user(
                session,
                actor,
                email=f"bench-{uuid.uuid4().hex[:8]}@bench.example.com",
                name="Bench Admin",
                role="admin",
                group_ids=[group.id],
            )
            token = auth_service.issue_token(session, actor, user, name="bench").secret
            # The busiest (status, group) pairs of the seeded data: what a team's queue view asks.
            pairs = session.execute(
                select(Ticket.status, Ticket.group_id, func.count())
                .where(Ticket.group_id.is_not(None))
                .group_by(Ticket.status, Ticket.group_id)
                .order_by(func.count().desc())
                .limit(12)
            ).all()
        return {
            "token": token,
            "group_id": group.id,
            "view_pairs": [(status, group_id) for status, group_id, _ in pairs] or [("new", group.id)],
            "seed_seconds": round(seed_seconds, 1),
        }
    finally:
        database.dispose()


@dataclass(slots=True)
class Server:
    base: str
    pid: int
    # Seconds from ready to quiet (see _settle).
    settle_seconds: float = 0.0


def _settle(pid: int, limit_seconds: float = 90.0) -> float:
    """Wait until the server is quiet: on start its job runner runs every schedule that is due
    (all of them, on a new database: rollups, reports, sweeps, retraining checks), which takes
    seconds of CPU and holds the write lock at times. The timed load measures the steady state,
    so it starts once the server's processes used under 5 % of a core for a second."""
    started = time.monotonic()
    quiet_polls = 0
    before = process_tree_cpu_seconds(pid)
    while quiet_polls < 2 and time.monotonic() - started < limit_seconds:
        time.sleep(0.5)
        now = process_tree_cpu_seconds(pid)
        quiet_polls = quiet_polls + 1 if now - before < 0.025 else 0
        before = now
    return round(time.monotonic() - started, 1)


@contextlib.contextmanager
def _server(url: str, directory: Path, workers: int, jobs: bool = True) -> Iterator[Server]:
    port = _free_port()
    environment = {**os.environ, "OPSDESK_DATA_DIR": str(directory), "OPSDESK_DATABASE_URL": url}
    if not jobs:
        # Background jobs (rollups, SLA sweeps...) left to `opsdesk worker`, as in production.
        environment["OPSDESK_RUN_JOBS_IN_PROCESS"] = "false"
    process = subprocess.Popen(  # noqa: S603 - our own server with fixed arguments
        [
            sys.executable,
            "-c",
            "from opsdesk.cli import main; main()",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--db",
            url,
            "--no-migrate",
            "--workers",
            str(workers),
        ],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"the server exited: {error.strip().splitlines()[-1:] or ''}")
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready in 120 s")
            time.sleep(0.2)
        yield Server(base=base, pid=process.pid, settle_seconds=_settle(process.pid))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _ticket_body(generator: random.Random, number: int) -> dict[str, Any]:
    words = generator.sample(WORDS, 8)
    return {
        "subject": f"{words[0].capitalize()} {words[1]} {words[2]} #{number}",
        "body": " ".join(generator.choices(WORDS, k=40)),
        "requester": {"email": f"customer{generator.randrange(2000)}@bench-customer.example.org"},
        "priority": generator.choice(("low", "normal", "normal", "high", "urgent")),
        "tags": generator.sample(("billing", "bug", "vip", "mobile", "api"), 2),
    }


_LEADING_ID = re.compile(rb'\{"id":(\d+)')
# One timed write: method, path, JSON body, and the status that counts as done.
WriteRequest = tuple[str, str, bytes, int]


async def _write_load(
    base: str, token: str, requests: list[WriteRequest], concurrency: int, warmup: int
) -> tuple[Timings, float, list[int]]:
    """``concurrency`` keep-alive connections, each sending its next request as soon as the last
    answer is in (the lean client of :mod:`opsdesk.bench.http_load`: the load generator shares
    the server's two cores). An answer counts only with the expected status and a body that is
    a ticket's JSON (it starts with the ``"id"``); the ids come back in order of arrival. The
    first ``warmup`` requests are sent, and not timed, before the rest."""
    host, _, port = base.removeprefix("http://").partition(":")
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    timings = Timings()
    ids: list[int] = []
    queue: asyncio.Queue[WriteRequest] = asyncio.Queue()
    connections = [KeepAliveConnection(host, int(port), headers) for _ in range(concurrency)]

    async def worker(connection: KeepAliveConnection, record: bool) -> None:
        while True:
            try:
                method, path, body, expected = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            try:
                answer = await connection.request(method, path, body)
                status = answer.status
                if status == expected:
                    # A ticket's JSON starts with its id (read without parsing the whole body:
                    # the client shares the server's cores).
                    found = _LEADING_ID.match(answer.body)
                    if found is None:
                        status = -1  # not the JSON the API promises
                    else:
                        ids.append(int(found.group(1)))
            except (HttpLoadError, OSError):
                status = 0
            elapsed = (time.perf_counter() - started) * 1000
            if record:
                timings.statuses[status] = timings.statuses.get(status, 0) + 1
                if status == expected:
                    timings.milliseconds.append(elapsed)
                else:
                    timings.errors += 1

    try:
        for request in requests[:warmup]:
            queue.put_nowait(request)
        await asyncio.gather(*(worker(connection, False) for connection in connections))
        for request in requests[warmup:]:
            queue.put_nowait(request)
        started = time.perf_counter()
        await asyncio.gather(*(worker(connection, True) for connection in connections))
        wall = time.perf_counter() - started
    finally:
        for connection in connections:
            await connection.close()
    return timings, wall, ids


def _creations(count: int) -> list[WriteRequest]:
    generator = random.Random(11)
    return [
        ("POST", "/api/v1/tickets", json.dumps(_ticket_body(generator, number)).encode(), 201)
        for number in range(count)
    ]


def _updates(ticket_ids: list[int], count: int) -> list[WriteRequest]:
    """What agents do all day: a ticket's priority, status or both, on tickets picked at random."""
    generator = random.Random(13)
    changes = (
        {"priority": "high"},
        {"priority": "low"},
        {"status": "open"},
        {"status": "pending"},
        {"status": "open", "priority": "urgent"},
    )
    return [
        (
            "PATCH",
            f"/api/v1/tickets/{generator.choice(ticket_ids)}",
            json.dumps(generator.choice(changes)).encode(),
            200,
        )
        for _ in range(count)
    ]


def _statuses(timings: Timings) -> dict[str, int]:
    return {str(status): count for status, count in sorted(timings.statuses.items())}


def _percentiles(timings: Timings) -> dict[str, float]:
    return {f"p{round(fraction * 100)}_ms": timings.percentile(fraction) for fraction in (0.50, 0.95, 0.99)}


def _write_figures(timings: Timings, wall: float, cpu_seconds: float) -> dict[str, Any]:
    done = len(timings.milliseconds)
    return {
        "requests": done,
        "errors": timings.errors,
        "statuses": _statuses(timings),
        "per_second": round(done / wall, 1) if wall else 0.0,
        **_percentiles(timings),
        "server_cpu_ms_per_request": round(cpu_seconds * 1000 / max(done, 1), 2),
    }


def _read_load(base: str, token: str, paths: list[str], rounds: int) -> Timings:
    """One client reading (as a person would), each path timed."""
    timings = Timings()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for path in paths[:3]:  # warm caches once
            client.get(path)
        for index in range(rounds):
            path = paths[index % len(paths)]
            started = time.perf_counter()
            answer = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            timings.statuses[answer.status_code] = timings.statuses.get(answer.status_code, 0) + 1
            if answer.status_code == 200:
                timings.milliseconds.append(elapsed)
            else:
                timings.errors += 1
    return timings


def run_bench(
    *,
    database_url: str | None,
    tickets: int,
    concurrency: int,
    workers: int,
    seed_tickets: int,
    read_rounds: int,
    existing_database: str | None = None,
    jobs: bool = True,
    updates: int = 0,
) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="opsdesk-bench-"))
    try:
        with _fresh_database(database_url, directory, existing_database) as url:
            prepared = _prepare(url, seed_tickets)
            with _server(url, directory, workers, jobs) as server:
                base = server.base
                settle_seconds = server.settle_seconds
                server_cpu_before = process_tree_cpu_seconds(server.pid)
                client_cpu_before = time.process_time()
                warmup = min(200, tickets)
                created, wall, ticket_ids = (
                    asyncio.run(
                        _write_load(
                            base, prepared["token"], _creations(tickets + warmup), concurrency, warmup
                        )
                    )
                    if tickets
                    else (Timings(), 0.0, [])
                )
                # The warm-up is included in both CPU figures; it is a small share of the run.
                server_cpu = process_tree_cpu_seconds(server.pid) - server_cpu_before
                client_cpu = time.process_time() - client_cpu_before
                update_figures: dict[str, Any] | None = None
                if updates and ticket_ids:
                    before = process_tree_cpu_seconds(server.pid)
                    changed, update_wall, _ = asyncio.run(
                        _write_load(
                            base, prepared["token"], _updates(ticket_ids, updates), concurrency, warmup=0
                        )
                    )
                    update_cpu = process_tree_cpu_seconds(server.pid) - before
                    update_figures = _write_figures(changed, update_wall, update_cpu)
                view_paths = [
                    f"/api/v1/tickets?status={status}&group={group_id}&limit=50"
                    for status, group_id in prepared["view_pairs"]
                ]
                before = process_tree_cpu_seconds(server.pid)
                views = _read_load(base, prepared["token"], view_paths, read_rounds)
                view_cpu = process_tree_cpu_seconds(server.pid) - before
                search_paths = [
                    f"/api/v1/tickets?q={word.replace(' ', '+')}&limit=50" for word in SEARCH_WORDS
                ]
                before = process_tree_cpu_seconds(server.pid)
                searches = _read_load(base, prepared["token"], search_paths, read_rounds)
                search_cpu = process_tree_cpu_seconds(server.pid) - before
        successful = len(created.milliseconds)
        measured = existing_database or database_url
        return {
            "database": "postgresql" if measured and measured.startswith("postgresql") else "sqlite",
            "existing_database": existing_database is not None,
            "jobs_in_server": jobs,
            "server_settle_seconds": settle_seconds,
            "workers": workers,
            "concurrency": concurrency,
            "tickets": successful,
            "errors": created.errors,
            "statuses": _statuses(created),
            "tickets_per_second": round(successful / wall, 1) if wall else 0.0,
            **_percentiles(created),
            "mean_ms": round(statistics.fmean(created.milliseconds), 2) if created.milliseconds else 0.0,
            # Machine-independent cost: CPU the server spent per created ticket (and the client's).
            "server_cpu_ms_per_ticket": round(server_cpu * 1000 / max(successful, 1), 2),
            "client_cpu_ms_per_ticket": round(client_cpu * 1000 / max(successful, 1), 2),
            # PATCHes of the created tickets (priority, status), same concurrency; with --updates.
            "updates": update_figures,
            "seeded_tickets": seed_tickets,
            "seed_seconds": prepared["seed_seconds"],
            "view_of_50": {
                "filter": "status + group, newest first",
                "requests": len(views.milliseconds),
                "errors": views.errors,
                "p50_ms": views.percentile(0.50),
                "p95_ms": views.percentile(0.95),
                # Server CPU per request (warm-up included): the load-independent cost.
                "server_cpu_ms_per_request": round(view_cpu * 1000 / max(len(views.milliseconds), 1), 2),
            },
            "keyword_search": {
                "queries": list(SEARCH_WORDS),
                "requests": len(searches.milliseconds),
                "errors": searches.errors,
                "p50_ms": searches.percentile(0.50),
                "p95_ms": searches.percentile(0.95),
                "server_cpu_ms_per_request": round(search_cpu * 1000 / max(len(searches.milliseconds), 1), 2),
            },
            "targets": {
                "tickets_per_second": 300,
                "p99_ms": 100,
                "view_p95_ms_at_1m": 50,
                "search_p95_ms_at_1m": 200,
            },
            "cpu_count": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("api")
    def api(
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", help="A PostgreSQL server URL: a fresh database is made on it."),
        ] = None,
        tickets: Annotated[
            int,
            typer.Option(help="Tickets to create over HTTP (timed); 0 measures only the view and search."),
        ] = 3000,
        concurrency: Annotated[int, typer.Option(help="Requests in flight at once.")] = 16,
        workers: Annotated[int, typer.Option(help="Server worker processes.")] = 2,
        seed_tickets: Annotated[
            int, typer.Option(help="Tickets to seed first, for the view and search figures.")
        ] = 0,
        read_rounds: Annotated[int, typer.Option(help="Timed requests for the view and for search.")] = 200,
        existing_database: Annotated[
            str | None,
            typer.Option(
                "--existing-database",
                help="Measure an already seeded database (SQLite or PostgreSQL URL) as it is, and keep it.",
            ),
        ] = None,
        jobs: Annotated[
            bool,
            typer.Option(
                "--jobs/--no-jobs",
                help="Run background jobs inside the server (the default), or leave them out.",
            ),
        ] = True,
        updates: Annotated[
            int,
            typer.Option(help="After the creations, PATCH the created tickets this many times (timed)."),
        ] = 0,
    ) -> None:
        """Ticket creation throughput and latency, view and search latency, over real HTTP."""
        if (
            tickets < 0
            or concurrency < 1
            or workers < 1
            or seed_tickets < 0
            or read_rounds < 1
            or updates < 0
        ):
            from opsdesk.cli import CliError

            raise CliError(
                "--concurrency, --workers and --read-rounds must be positive, --tickets and --updates "
                "not negative"
            )
        if existing_database is not None and (seed_tickets or database_url):
            from opsdesk.cli import CliError

            raise CliError("--existing-database is measured as it is: no --seed-tickets or --database-url")
        result = run_bench(
            database_url=database_url,
            tickets=tickets,
            concurrency=concurrency,
            workers=workers,
            seed_tickets=seed_tickets,
            read_rounds=read_rounds,
            existing_database=existing_database,
            jobs=jobs,
            updates=updates,
        )
        typer.echo(json.dumps(result))
