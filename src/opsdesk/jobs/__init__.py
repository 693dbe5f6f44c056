"""The durable job runner over the transactional outbox (:mod:`opsdesk.outbox`).

- ``@job_handler("kind")`` registers ``def handler(session, job) -> None`` for outbox rows
  written with :func:`opsdesk.outbox.enqueue`; delivery is at least once, with exponential
  backoff and jitter, and dead letters after ``max_attempts``. Handlers pass
  ``job.idempotency_key`` on to receivers.
- ``@scheduled("name", every=timedelta(...))`` registers periodic ``def work(session) -> None``;
  schedule state is stored in the database so several workers never run a period twice.
- :class:`Runner` runs in-process (``create_app()`` when ``run_jobs_in_process``), alone
  (``opsdesk worker``), or as several workers sharing the work, woken through Redis when
  ``OPSDESK_BROKER_URL`` is set.
Handlers live in each domain's ``jobs.py`` and are discovered, like routers and models.
"""

from opsdesk.jobs.registry import job_handler, runner_database, scheduled
from opsdesk.outbox import OutboxJob, enqueue

__all__ = ["OutboxJob", "enqueue", "job_handler", "runner_database", "scheduled"]
