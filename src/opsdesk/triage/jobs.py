"""Background work of triage: training a model version (``triage.train`` jobs, queued from the
API or the page) and a daily check that retrains once enough new labelled tickets have come in."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from opsdesk.auth.actor import Actor
from opsdesk.jobs import OutboxJob, job_handler, scheduled
from opsdesk.triage.errors import NotEnoughTrainingDataError
from opsdesk.triage.service import registry

TRAINING_ACTOR = Actor.system("triage training", via="job")


@job_handler(registry.TRAIN_JOB)
def train(session: Session, job: OutboxJob) -> None:
    kind = str(job.payload.get("kind") or registry.default_kind())
    try:
        registry.train_model(
            session,
            TRAINING_ACTOR,
            kind=kind,
            activate=bool(job.payload.get("activate", True)),
            encoder=job.payload.get("encoder") or None,
        )
    except NotEnoughTrainingDataError as error:
        # retrying cannot help until people label more tickets: record why and finish the job
        registry.record_training_skipped(session, TRAINING_ACTOR, str(error))


@scheduled("triage.retrain_when_grown", every=timedelta(days=1))
def retrain_when_grown(session: Session) -> None:
    registry.request_training_if_grown(session, TRAINING_ACTOR)
