"""Training as background work (the job runner) and the ``opsdesk triage`` commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import migrate
from opsdesk.auth.models import AuditEvent
from opsdesk.jobs.runner import run_pending
from opsdesk.outbox import OutboxJob
from opsdesk.tickets import service as tickets
from opsdesk.triage.models import TriageModel
from opsdesk.triage.seed import seed_defaults
from opsdesk.triage.service import registry
from tests.support.databases import BoundDatabase
from tests.support.factories import make_ticket, make_user, staff_actor
from tests.triage.generated import labelled_texts


def test_queued_training_runs_in_the_job_runner(db: Session, database: BoundDatabase) -> None:
    seed_defaults(db)
    agent = staff_actor(make_user(db))
    labelled = 0
    for text, category in labelled_texts(9):
        ticket = make_ticket(db, subject=text[:50], body=text)
        labelled += len(tickets.update_ticket(db, agent, ticket, {"category": category}))
    job = registry.request_training(db, staff_actor(make_user(db, role="admin")))
    db.commit()
    assert run_pending(database) >= 1
    db.expire_all()
    finished = db.get_one(OutboxJob, job.id)
    assert (finished.status, finished.last_error) == ("done", None)
    model = db.scalars(select(TriageModel)).one()
    assert (model.version, model.n_train, model.trained_by) == (1, labelled, "triage training")
    assert db.get_one(OutboxJob, job.id).status == "done"


def test_training_job_without_labels_finishes_and_says_why(db: Session, database: BoundDatabase) -> None:
    seed_defaults(db)
    registry.request_training(db, staff_actor(make_user(db, role="admin")))
    db.commit()
    run_pending(database)
    db.expire_all()
    assert db.scalars(select(TriageModel)).first() is None
    skipped = db.scalars(select(AuditEvent).where(AuditEvent.action == "training_skipped")).one()
    assert "cannot train from 0 labelled tickets" in (skipped.reason or "")


def test_cli_seeds_and_refuses_to_train_without_labels(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    command = [str(Path(sys.executable).parent / "opsdesk")]

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *arguments], capture_output=True, text=True, timeout=120, check=False
        )

    migrate.upgrade(url)
    seeded = run("triage", "seed", "--db", url)
    assert seeded.stdout.strip() == "default taxonomy and keyword rules are in place"
    refused = run("triage", "train", "--db", url)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: cannot train from 0 labelled tickets: at least two categories are needed to train a model"
    )
