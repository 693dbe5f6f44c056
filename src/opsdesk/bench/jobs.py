"""``opsdesk bench jobs``: outbox delivery rate to a local HTTP receiver.

Writes ``--jobs`` ``http.post`` jobs to a fresh database (SQLite by default), starts a small
keep-alive HTTP receiver in another process (ephemeral port) that applies each Idempotency-Key
once, then runs the job runner until every job is done and reports jobs per second. Prints one
JSON object.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Annotated

import orjson
import typer
from sqlalchemy import func, insert, select

from opsdesk import clock, migrate
from opsdesk.db import Database
from opsdesk.jobs.runner import Runner, RunnerOptions
from opsdesk.outbox import OutboxJob


def _serve(connection: Connection) -> None:
    """The receiver: HTTP/1.1 keep-alive, answers 200 to every POST, counts distinct keys."""
    keys: set[str] = set()
    requests = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                key = ""
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    lowered = name.strip().lower()
                    if lowered == b"content-length":
                        length = int(value.strip())
                    elif lowered == b"idempotency-key":
                        key = value.strip().decode()
                if length:
                    await reader.readexactly(length)
                requests += 1
                keys.add(key)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        connection.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, connection.recv)  # wait for "stop"
        connection.send((requests, len(keys)))
        server.close()

    asyncio.run(main())


def run(database: Database, jobs: int, concurrency: int, batch_size: int) -> dict[str, object]:
    parent, child = multiprocessing.Pipe()
    receiver = multiprocessing.get_context("spawn").Process(target=_serve, args=(child,), daemon=True)
    receiver.start()
    port = parent.recv()
    url = f"http://127.0.0.1:{port}/hook"
    now = clock.now()
    with database.transaction() as session:
        session.execute(
            insert(OutboxJob),
            [
                {
                    "kind": "http.post",
                    "payload": {"url": url, "json": {"number": number}},
                    "idempotency_key": f"bench:{number}",
                    "status": "pending",
                    "attempts": 0,
                    "max_attempts": 10,
                    "run_at": now,
                    "created_at": now,
                }
                for number in range(jobs)
            ],
        )
    runner = Runner(database, options=RunnerOptions(concurrency=concurrency, batch_size=batch_size))
    began = time.perf_counter()
    delivered = runner.run_until_idle(max_rounds=jobs)
    seconds = time.perf_counter() - began
    runner.stop()
    parent.send("stop")
    requests, distinct = parent.recv()
    receiver.join(5)
    with database.transaction(write=False) as session:
        done = session.scalar(select(func.count()).where(OutboxJob.status == "done"))
    return {
        "bench": "jobs",
        "database": database.engine.dialect.name,
        "jobs": jobs,
        "delivered": delivered,
        "done": done,
        "receiver_requests": requests,
        "receiver_distinct_keys": distinct,
        "seconds": round(seconds, 3),
        "jobs_per_second": round(jobs / seconds),
        "concurrency": concurrency,
    }


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("jobs")
    def jobs_bench(
        jobs: Annotated[int, typer.Option(help="Jobs to deliver.")] = 10_000,
        concurrency: Annotated[int, typer.Option(help="Deliveries at the same time.")] = 32,
        batch_size: Annotated[int, typer.Option(help="Jobs claimed per round.")] = 500,
        database_url: Annotated[
            str | None,
            typer.Option("--database-url", "--db", help="Database (default: a fresh SQLite file)."),
        ] = None,
    ) -> None:
        """Time outbox delivery to a local HTTP receiver."""
        directory = None
        if database_url is None:
            directory = tempfile.TemporaryDirectory(prefix="opsdesk-bench-jobs-")
            database_url = f"sqlite:///{Path(directory.name) / 'bench.db'}"
        migrate.upgrade(database_url)
        database = Database(database_url)
        try:
            typer.echo(orjson.dumps(run(database, jobs, concurrency, batch_size)).decode())
        finally:
            database.dispose()
            if directory is not None:
                directory.cleanup()
