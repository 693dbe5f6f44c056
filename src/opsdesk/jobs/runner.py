"""The job runner: claims due outbox jobs under a lease and runs their handlers.

Invariants
- A job is claimed in its own short transaction: row locks (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, the single writer lock taken by ``BEGIN IMMEDIATE`` on SQLite) make the claim
  exclusive; the claim sets ``status='running'``, ``locked_by`` and ``locked_until`` and counts the
  attempt, so a worker killed mid-job leaves a lease that expires and the job runs again
  (at least once).
- The handler runs in a fresh transaction that also marks the job done, guarded by
  ``locked_by``: a worker whose lease was taken over cannot mark the job done twice.
- A failed attempt goes back to ``pending`` with an exponential, jittered delay; after
  ``max_attempts`` it becomes a dead letter (``status='dead'``) for an admin to retry.
- Scheduled work becomes one outbox job per period (see :mod:`opsdesk.jobs.registry`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, event, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.db import Database
from opsdesk.jobs.backoff import BASE_DELAY, MAX_DELAY, retry_delay
from opsdesk.jobs.broker import LocalWakeup
from opsdesk.jobs.models import JobSchedule
from opsdesk.jobs.registry import DATABASE_INFO_KEY, handler_for, load_handlers, schedules
from opsdesk.outbox import OutboxJob, add_commit_listener, enqueue, remove_commit_listener

log = logging.getLogger("opsdesk.jobs")

PENDING = "pending"
RUNNING = "running"
DONE = "done"
DEAD = "dead"
# Outcomes of one attempt.
SIDE_EFFECT_ONLY = "side_effect_only"
FAILED = "failed"
LOST = "lost"
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    batch_size: int = 100
    concurrency: int = 8
    lease: timedelta = timedelta(minutes=5)
    poll_seconds: float = 1.0
    backoff_base: timedelta = BASE_DELAY
    backoff_ceiling: timedelta = MAX_DELAY


class LeaseLostError(Exception):
    """Another worker took the job over after this worker's lease ran out."""


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Runner:
    """Delivers outbox jobs of one database; several runners (threads or processes) may share it."""

    def __init__(
        self,
        database: Database,
        *,
        options: RunnerOptions | None = None,
        wakeup: LocalWakeup | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.database = database
        self.options = options or RunnerOptions()
        self.wakeup = wakeup or LocalWakeup()
        self.worker_id = worker_id or new_worker_id()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(
            max_workers=self.options.concurrency, thread_name_prefix="opsdesk-job"
        )
        self._schedules_ready = False

    # ------------------------------------------------------------------ loop

    def run_once(self) -> int:
        """Enqueue due scheduled work, then claim and run one batch; returns jobs run."""
        load_handlers()  # imported here, in the runner's thread, not during server startup
        self.enqueue_due_schedules()
        jobs = self.claim(self.options.batch_size)
        if not jobs:
            return 0
        if len(jobs) == 1 or self.options.concurrency == 1:
            outcomes = [self._attempt(job) for job in jobs]
        else:
            outcomes = list(self._pool.map(self._attempt, jobs))
        self._finish(
            [job for job, outcome in zip(jobs, outcomes, strict=True) if outcome == SIDE_EFFECT_ONLY]
        )
        return len(jobs)

    def run_until_idle(self, *, max_rounds: int = 1000) -> int:
        """Run batches until nothing is due (tests, the CLI's ``--once``)."""
        total = 0
        for _ in range(max_rounds):
            ran = self.run_once()
            total += ran
            if ran == 0:
                break
        return total

    def run_forever(self) -> None:
        add_commit_listener(self.wakeup.announce)
        try:
            while not self._stop.is_set():
                try:
                    ran = self.run_once()
                except Exception:  # a database outage must not kill the runner; retry after a pause
                    log.exception("job runner round failed")
                    ran = 0
                if ran < self.options.batch_size and not self._stop.is_set():
                    self.wakeup.wait(self.options.poll_seconds)
        finally:
            remove_commit_listener(self.wakeup.announce)

    def start(self) -> None:
        """Run in a background thread of this process (``opsdesk serve``)."""
        self._thread = threading.Thread(target=self.run_forever, name="opsdesk-jobs", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop to finish its current round and return (safe from a signal handler)."""
        self._stop.set()
        self.wakeup.announce()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.wakeup.close()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------------ claiming

    def claim(self, limit: int) -> list[OutboxJob]:
        now = clock.now()
        due = or_(
            and_(OutboxJob.status == PENDING, OutboxJob.run_at <= now),
            and_(OutboxJob.status == RUNNING, OutboxJob.locked_until < now),
        )
        with self.database.transaction() as session:
            jobs = list(
                session.scalars(
                    select(OutboxJob)
                    .where(due)
                    .order_by(OutboxJob.run_at, OutboxJob.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            if not jobs:
                return []
            locked_until = now + self.options.lease
            for job in jobs:
                job.status = RUNNING
                job.attempts = job.attempts + 1
                job.locked_by = self.worker_id
                job.locked_until = locked_until
            session.flush()
            for job in jobs:
                session.expunge(job)
        return jobs

    # ------------------------------------------------------------------ running

    def run_job(self, job: OutboxJob) -> bool:
        """Run one claimed job; True when it is done."""
        outcome = self._attempt(job)
        if outcome == SIDE_EFFECT_ONLY:
            return self._finish([job]) == 1
        return outcome == DONE

    def _attempt(self, job: OutboxJob) -> str:
        """Run the handler. A handler that wrote to the database is marked done in its own
        transaction (its writes and the completion commit together); one that only had outside
        effects (an HTTP call) answers :data:`SIDE_EFFECT_ONLY` and is marked done with the rest
        of its batch in one statement, so deliveries do not queue on SQLite's single writer."""
        load_handlers()
        handler = handler_for(job.kind)
        touched = False

        def _began(*_: object) -> None:
            nonlocal touched
            touched = True

        try:
            with self.database.write_sessions() as session:
                session.info[DATABASE_INFO_KEY] = self.database
                event.listen(session, "after_begin", _began)
                with session.begin():
                    if handler is None:
                        raise LookupError(f"no handler is registered for job kind {job.kind!r}")
                    handler(session, job)
                    if not touched:
                        return SIDE_EFFECT_ONLY
                    finished = session.execute(
                        update(OutboxJob)
                        .where(OutboxJob.id == job.id, OutboxJob.locked_by == self.worker_id)
                        .values(status=DONE, finished_at=clock.now(), locked_until=None, last_error=None)
                        .execution_options(synchronize_session=False)
                    )
                    if finished.rowcount != 1:  # type: ignore[attr-defined]
                        raise LeaseLostError(f"job {job.id} was taken over by another worker")
            return DONE
        except LeaseLostError:
            log.warning("job %s: lease lost, its work was rolled back", job.id)
            return LOST
        except Exception as error:
            log.info("job %s (%s) failed on attempt %s: %s", job.id, job.kind, job.attempts, error)
            self._record_failure(job, error)
            return FAILED

    def _finish(self, jobs: list[OutboxJob]) -> int:
        """Mark side-effect-only jobs done, still guarded by this worker's lease."""
        if not jobs:
            return 0
        with self.database.transaction() as session:
            finished = session.execute(
                update(OutboxJob)
                .where(OutboxJob.id.in_([job.id for job in jobs]), OutboxJob.locked_by == self.worker_id)
                .values(status=DONE, finished_at=clock.now(), locked_until=None, last_error=None)
                .execution_options(synchronize_session=False)
            )
            return int(finished.rowcount)  # type: ignore[attr-defined]

    def _record_failure(self, job: OutboxJob, error: Exception) -> None:
        now = clock.now()
        message = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
        if job.attempts >= job.max_attempts:
            values: dict[str, object] = {"status": DEAD, "finished_at": now}
        else:
            delay = retry_delay(
                job.attempts, base=self.options.backoff_base, ceiling=self.options.backoff_ceiling
            )
            values = {"status": PENDING, "run_at": now + delay}
        with self.database.transaction() as session:
            session.execute(
                update(OutboxJob)
                .where(OutboxJob.id == job.id, OutboxJob.locked_by == self.worker_id)
                .values(locked_until=None, locked_by=None, last_error=message, **values)
                .execution_options(synchronize_session=False)
            )

    # ------------------------------------------------------------------ schedules

    def enqueue_due_schedules(self) -> int:
        """Turn each due period of scheduled work into one outbox job; returns how many."""
        known = schedules()
        if not known:
            return 0
        if not self._schedules_ready:
            self._ensure_schedule_rows()
        if not self.wakeup.acquire_schedule_lock(self.worker_id, seconds=5):
            return 0
        now = clock.now()
        by_name = {schedule.name: schedule for schedule in known}
        enqueued = 0
        with self.database.transaction() as session:
            rows = list(
                session.scalars(
                    select(JobSchedule)
                    .where(JobSchedule.next_run_at <= now, JobSchedule.name.in_(list(by_name)))
                    .with_for_update(skip_locked=True)
                )
            )
            for row in rows:
                schedule = by_name[row.name]
                # Periods missed while no worker ran are skipped: run the latest one once.
                period = _latest_period(row.next_run_at, schedule.every, now)
                key = f"{schedule.kind}:{period.isoformat()}"
                if session.scalar(select(OutboxJob.id).where(OutboxJob.idempotency_key == key)) is None:
                    enqueue(
                        session,
                        schedule.kind,
                        {"period": period.isoformat()},
                        idempotency_key=key,
                        max_attempts=3,
                    )
                    enqueued += 1
                row.next_run_at = period + schedule.every
                row.last_enqueued_at = now
        return enqueued

    def _ensure_schedule_rows(self) -> None:
        now = clock.now()
        for schedule in schedules():
            every = int(schedule.every.total_seconds())
            try:
                with self.database.transaction() as session:
                    row = session.get(JobSchedule, schedule.name)
                    if row is None:
                        session.add(JobSchedule(name=schedule.name, every_seconds=every, next_run_at=now))
                    elif row.every_seconds != every:
                        row.every_seconds = every
                        row.next_run_at = min(row.next_run_at, now + schedule.every)
            except IntegrityError:
                pass  # another worker inserted the row first; theirs is as good as ours
        self._schedules_ready = True


def _latest_period(period: datetime, every: timedelta, now: datetime) -> datetime:
    """The last period start at or before ``now`` on the grid ``period + k * every``."""
    return period + int((now - period) / every) * every


def run_pending(database: Database, *, options: RunnerOptions | None = None) -> int:
    """Deliver everything due now in this thread (``opsdesk worker --once``, tests)."""
    runner = Runner(database, options=options or RunnerOptions(concurrency=1))
    try:
        return runner.run_until_idle()
    finally:
        runner.stop()


def session_job_counts(session: Session) -> dict[str, int]:
    """How many outbox jobs are in each status (admin page, ``opsdesk worker --status``)."""
    from sqlalchemy import func

    rows = session.execute(select(OutboxJob.status, func.count()).group_by(OutboxJob.status)).all()
    return {str(status): int(count) for status, count in rows}
