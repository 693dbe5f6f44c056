"""The runner across real processes: a process killed with SIGKILL between commit and delivery,
and a worker killed mid-delivery, lose nothing and apply nothing twice at a real HTTP receiver;
two workers sharing PostgreSQL and a Redis broker never run the same job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from opsdesk import migrate
from opsdesk.config import Settings
from opsdesk.db import Database
from opsdesk.jobs.broker import RedisWakeup
from opsdesk.jobs.process import InProcessJobs
from opsdesk.outbox import OutboxJob, enqueue
from tests.support.databases import postgres_database
from tests.support.receiver import Receiver, start_receiver

OPSDESK = str(Path(sys.executable).with_name("opsdesk"))
# Deadlock guards, not timings: they only fire when something is stuck.
STARTUP_GUARD_SECONDS = 240
REDIS_URL = os.environ.get("OPSDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="module")
def fresh_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Databases that real processes share (committed data, not a rolled-back test transaction)."""
    directory = tmp_path_factory.mktemp("durable")
    sqlite_url = f"sqlite:///{directory / 'jobs.db'}"
    with postgres_database() as postgres_url:
        for url in (sqlite_url, postgres_url):
            migrate.upgrade(url)
        yield {"sqlite": sqlite_url, "postgresql": postgres_url}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = start_receiver()
    yield receiver
    receiver.close()


def _worker(url: str, log: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [OPSDESK, "worker", "--db", url, *extra],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "OPSDESK_DATA_DIR": str(log.parent), **(env or {})},
    )


def _counts(url: str, prefix: str) -> dict[str, int]:
    database = Database(url)
    try:
        with database.transaction(write=False) as session:
            rows = session.execute(
                select(OutboxJob.status, func.count())
                .where(OutboxJob.idempotency_key.startswith(prefix))
                .group_by(OutboxJob.status)
            ).all()
            return {str(status): int(count) for status, count in rows}
    finally:
        database.dispose()


def _wait_until(check: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_kill_between_commit_and_delivery_loses_nothing_and_applies_nothing_twice(
    dialect: str, fresh_urls: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    url = fresh_urls[dialect]
    prefix = f"kill-{dialect}-"
    # Given a process that commits 12 deliveries and is killed before it can deliver any,
    writer = textwrap.dedent(
        f"""
        import os, signal
        from opsdesk.db import Database
        from opsdesk.outbox import enqueue
        database = Database({url!r})
        with database.transaction() as session:
            for number in range(12):
                enqueue(session, "http.post", {{"url": {receiver.url + "/hook"!r}, "json": {{"n": number}}}},
                        idempotency_key={prefix!r} + str(number))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    killed = subprocess.run([sys.executable, "-c", writer], check=False, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert _counts(url, prefix) == {"pending": 12}
    assert receiver.requests == []

    # when a worker is killed with the first delivery in flight,
    receiver.hold = __import__("threading").Event()
    log = tmp_path / "worker.log"
    first = _worker(
        url, log, "--lease-seconds", "1", "--poll-seconds", "0.2", "--concurrency", "1", "--batch-size", "4"
    )
    try:
        # A generous guard, not a timing: a worker starts in about a second on an idle machine.
        assert receiver.arrived.wait(STARTUP_GUARD_SECONDS), log.read_text()
    finally:
        first.kill()
        first.wait(10)
    receiver.hold.set()
    in_flight = receiver.keys()
    assert len(in_flight) == 1

    # and a new worker starts,
    second = _worker(url, log, "--lease-seconds", "1", "--poll-seconds", "0.2", "--concurrency", "2")
    try:
        _wait_until(lambda: _counts(url, prefix) == {"done": 12}, STARTUP_GUARD_SECONDS)
    finally:
        second.terminate()
        assert second.wait(60) == 0, log.read_text()

    # then every delivery arrived, each applied once; only the one in flight was sent again.
    expected = sorted(f"{prefix}{number}" for number in range(12))
    assert sorted(receiver.applied) == expected
    sent = Counter(receiver.keys())
    assert sorted(sent) == expected
    assert {key: count for key, count in sent.items() if count > 1} == {in_flight[0]: 2}
    assert sorted(request.body["n"] for request in receiver.requests) == sorted(
        [*range(12), int(in_flight[0].rsplit("-", 1)[1])]
    )


def test_two_workers_on_postgresql_with_redis_never_run_the_same_job(
    fresh_urls: dict[str, str], receiver: Receiver, tmp_path: Path
) -> None:
    url = fresh_urls["postgresql"]
    prefix = "shared-"
    log = tmp_path / "workers.log"
    broker = {"OPSDESK_BROKER_URL": REDIS_URL}
    # Workers that poll only every 60 s: quick delivery below proves the Redis wake-up works.
    options = ("--poll-seconds", "60", "--batch-size", "5", "--concurrency", "3")
    workers = [_worker(url, log, *options, env=broker) for _ in range(2)]
    web = InProcessJobs(
        Settings(broker_url=REDIS_URL, run_jobs_in_process=False, data_dir=tmp_path), Database(url)
    )
    try:
        # Both workers are up and subscribed to the wake-up channel before anything is enqueued
        # (their start-up time varies with the machine's load; a fixed sleep is not enough).
        channel = RedisWakeup(REDIS_URL, url).channel
        subscriptions = redis.Redis.from_url(REDIS_URL)
        _wait_until(lambda: dict(subscriptions.pubsub_numsub(channel)).get(channel.encode(), 0) >= 2, 240)
        web.start()
        with web.database.transaction() as session:
            for number in range(150):
                enqueue(
                    session,
                    "http.post",
                    {"url": receiver.url + "/hook", "json": {"n": number}},
                    idempotency_key=f"{prefix}{number}",
                )
        _wait_until(lambda: _counts(url, prefix) == {"done": 150}, 40)
        with web.database.transaction(write=False) as session:
            owners = Counter(
                session.scalars(
                    select(OutboxJob.locked_by).where(OutboxJob.idempotency_key.startswith(prefix))
                )
            )
    finally:
        web.stop()
        web.database.dispose()
        for worker in workers:
            worker.terminate()
        codes = [worker.wait(60) for worker in workers]
    assert codes == [0, 0], log.read_text()
    sent = Counter(receiver.keys())
    assert len(sent) == 150
    assert set(sent.values()) == {1}
    assert len(owners) == 2, owners
    assert sum(owners.values()) == 150
