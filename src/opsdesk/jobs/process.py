"""Where the runner runs: inside ``opsdesk serve`` (a thread) or alone (``opsdesk worker``),
woken in-process or, with ``OPSDESK_BROKER_URL=redis://…``, through Redis."""

from __future__ import annotations

import signal
from types import FrameType

from opsdesk.config import Settings
from opsdesk.db import Database
from opsdesk.jobs.broker import LocalWakeup, RedisWakeup
from opsdesk.jobs.runner import Runner, RunnerOptions
from opsdesk.outbox import add_commit_listener, remove_commit_listener


def build_wakeup(settings: Settings, database_url: str) -> LocalWakeup:
    if settings.broker_url:
        if not settings.broker_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("OPSDESK_BROKER_URL must be a redis:// URL")
        return RedisWakeup(settings.broker_url, database_url)
    return LocalWakeup()


class InProcessJobs:
    """What ``create_app()`` starts on startup and stops on shutdown."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.runner: Runner | None = None
        self.announcer: LocalWakeup | None = None

    def start(self) -> None:
        wakeup = build_wakeup(self.settings, self.database.url)
        if self.settings.run_jobs_in_process:
            if isinstance(wakeup, RedisWakeup):
                wakeup.listen()
            self.runner = Runner(self.database, wakeup=wakeup)
            self.runner.start()
        elif isinstance(wakeup, RedisWakeup):
            # No runner here, but jobs this process commits should wake the workers at once.
            self.announcer = wakeup
            add_commit_listener(wakeup.announce)

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        if self.announcer is not None:
            remove_commit_listener(self.announcer.announce)
            self.announcer.close()
            self.announcer = None


def run_worker(settings: Settings, *, options: RunnerOptions, once: bool = False) -> int:
    """``opsdesk worker``: run jobs until SIGTERM/SIGINT (or until idle with ``once``)."""
    database = Database(settings.resolved_database_url)
    wakeup = build_wakeup(settings, database.url)
    runner = Runner(database, options=options, wakeup=wakeup)
    try:
        if once:
            return runner.run_until_idle()
        if isinstance(wakeup, RedisWakeup):
            wakeup.listen()

        def _stop(signum: int, frame: FrameType | None) -> None:
            del signum, frame
            runner.request_stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        runner.run_forever()
        return 0
    finally:
        runner.stop()
        database.dispose()
