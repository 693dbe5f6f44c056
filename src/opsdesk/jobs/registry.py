"""The registry of job handlers and scheduled work.

A handler is ``def handler(session, job) -> None`` registered for one outbox ``kind`` with
:func:`job_handler`; it runs in a transaction that also marks the job done, so whatever the
handler writes to the database commits together with the job's completion. Side effects that
leave the process (HTTP, email) may repeat after a crash: handlers pass ``job.idempotency_key``
to the receiver so it can drop the repeat.

Scheduled work is ``def work(session) -> None`` registered with :func:`scheduled`; the runner
turns each due period into one outbox job of kind ``schedule:<name>`` whose idempotency key names
the period, so two workers can never run the same period twice.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from opsdesk.db import Database
from opsdesk.outbox import OutboxJob

JobFunction = Callable[[Session, OutboxJob], None]
ScheduledFunction = Callable[[Session], None]
SCHEDULE_PREFIX = "schedule:"


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    every: timedelta
    function: ScheduledFunction

    @property
    def kind(self) -> str:
        return SCHEDULE_PREFIX + self.name


_handlers: dict[str, JobFunction] = {}
_schedules: dict[str, Schedule] = {}
_loaded = False


def job_handler(kind: str) -> Callable[[JobFunction], JobFunction]:
    """Register ``handler(session, job)`` for outbox jobs of ``kind``."""

    def register(function: JobFunction) -> JobFunction:
        existing = _handlers.get(kind)
        if (
            existing is not None
            and existing is not function
            and existing.__qualname__ != function.__qualname__
        ):
            raise ValueError(f"job kind {kind!r} already has a handler ({existing.__qualname__})")
        _handlers[kind] = function
        return function

    return register


def scheduled(name: str, *, every: timedelta) -> Callable[[ScheduledFunction], ScheduledFunction]:
    """Register ``work(session)`` to run once per ``every`` across all workers."""
    if every.total_seconds() < 1:
        raise ValueError("scheduled work runs at most once a second")

    def register(function: ScheduledFunction) -> ScheduledFunction:
        schedule = Schedule(name=name, every=every, function=function)
        _schedules[name] = schedule

        def run_scheduled(session: Session, job: OutboxJob) -> None:
            del job
            function(session)

        run_scheduled.__qualname__ = f"scheduled:{name}"
        _handlers[schedule.kind] = run_scheduled
        return function

    return register


def load_handlers() -> None:
    """Import every domain's ``jobs`` module so its handlers and schedules are registered."""
    global _loaded
    if _loaded:
        return
    from opsdesk.domains import domain_modules

    importlib.import_module("opsdesk.jobs.builtin")
    importlib.import_module("opsdesk.jobs.retention")
    domain_modules("jobs")
    _loaded = True


DATABASE_INFO_KEY = "opsdesk.jobs.database"


def runner_database(session: Session) -> Database:
    """The database of the runner that runs this job: for handlers that work in several short
    transactions of their own (polling a mailbox) instead of the job's one."""
    database = session.info.get(DATABASE_INFO_KEY)
    if not isinstance(database, Database):
        raise RuntimeError("this session was not opened by the job runner")
    return database


def handler_for(kind: str) -> JobFunction | None:
    return _handlers.get(kind)


def schedules() -> list[Schedule]:
    return sorted(_schedules.values(), key=lambda schedule: schedule.name)


def kinds() -> list[str]:
    return sorted(_handlers)
