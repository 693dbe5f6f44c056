"""Finished jobs do not pile up: delivered jobs are deleted once they are old.

Scheduled work alone (mailbox polling every ten seconds, SLA sweeps every minute) finishes
thousands of jobs a day. A delivered job is only worth keeping while someone might look at it or
while its idempotency key might be enqueued again (a retried request, a redelivered webhook),
which happens within minutes, not weeks. Dead letters stay until a person retries or drops them.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.jobs.registry import scheduled
from opsdesk.outbox import OutboxJob

DONE = "done"
KEEP_FINISHED = timedelta(days=14)
# Deleted in chunks so a first run over a large backlog never holds SQLite's write lock for long.
CHUNK = 5_000
CHUNKS_PER_RUN = 20


def prune_finished_jobs(session: Session, *, keep: timedelta = KEEP_FINISHED) -> int:
    """Delete delivered jobs that finished more than ``keep`` ago; returns how many."""
    cutoff = clock.now() - keep
    removed = 0
    for _ in range(CHUNKS_PER_RUN):
        ids = list(
            session.scalars(
                select(OutboxJob.id)
                .where(OutboxJob.status == DONE, OutboxJob.finished_at < cutoff)
                .order_by(OutboxJob.id)
                .limit(CHUNK)
            )
        )
        if not ids:
            break
        session.execute(delete(OutboxJob).where(OutboxJob.id.in_(ids)))
        removed += len(ids)
    return removed


@scheduled("jobs.prune_finished", every=timedelta(hours=1))
def prune_finished(session: Session) -> None:
    prune_finished_jobs(session)
