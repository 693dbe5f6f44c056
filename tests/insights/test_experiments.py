"""Experiments: sample size up front, random per-ticket arms drawn once, results per arm."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.errors import PermissionDeniedError
from opsdesk.insights.errors import ExperimentStateError, InvalidExperimentError
from opsdesk.insights.models import Experiment, ExperimentAssignment
from opsdesk.insights.service import experiments
from opsdesk.tickets import service as tickets
from tests.insights.scenario import MONDAY
from tests.support.factories import make_ticket, make_user, staff_actor


def _new(**changes: object) -> experiments.NewExperiment:
    values: dict[str, object] = {
        "key": "macro.refund-v2",
        "name": "Refund macro v2",
        "subject": "macro",
        "metric": "first_contact_resolution",
        "arms": ("A", "B"),
        "baseline": 0.30,
        "minimum_effect": 0.05,
    }
    values.update(changes)
    return experiments.NewExperiment(**values)  # type: ignore[arg-type]


def test_sample_size_is_computed_when_created(db: Session) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    experiment = experiments.create_experiment(db, lead, _new())
    assert experiment.required_per_arm == 1377
    durations = experiments.create_experiment(
        db,
        lead,
        _new(
            key="sla.window",
            metric="first_reply_time",
            baseline=3600,
            baseline_spread=1.0,
            minimum_effect=-0.1,
        ),
    )
    assert durations.required_per_arm == 1637


def test_invalid_experiments_change_nothing(db: Session) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    before = db.scalar(select(func.count()).select_from(Experiment))
    with pytest.raises(InvalidExperimentError) as refused:
        experiments.create_experiment(db, lead, _new(key="Bad Key", arms=("A",), metric="csat_typo"))
    assert {problem.location for problem in refused.value.fields} == {("key",), ("arms",), ("metric",)}
    with pytest.raises(InvalidExperimentError):
        experiments.create_experiment(db, lead, _new(baseline=0.99, minimum_effect=0.05))
    with pytest.raises(PermissionDeniedError):
        experiments.create_experiment(db, staff_actor(make_user(db, role="agent")), _new())
    assert db.scalar(select(func.count()).select_from(Experiment)) == before


def test_running_experiment_draws_once_and_reports_per_arm(db: Session) -> None:
    lead = staff_actor(make_user(db, role="lead"))
    agent = staff_actor(make_user(db))
    experiment = experiments.create_experiment(db, lead, _new())
    assert experiments.arm_for(db, experiment.key, 1) is None  # draft: no arms yet
    experiments.start_experiment(db, lead, experiment)
    with pytest.raises(ExperimentStateError):
        experiments.start_experiment(db, lead, experiment)
    created = []
    with clock.frozen(MONDAY) as frozen:
        for number in range(40):
            ticket = make_ticket(db)
            created.append(ticket)
            frozen.advance(timedelta(minutes=5))
            tickets.add_message(db, agent, ticket, body_text="Answer")
            # Arm B's tickets are all solved at the first reply; A's need a second one.
            arm = experiments.arm_for(db, experiment.key, ticket.id)
            if arm == "A" and number % 2 == 0:
                tickets.add_message(db, agent, ticket, body_text="More")
            tickets.update_ticket(db, agent, ticket, {"status": "solved"})
    arms = Counter(
        db.scalars(
            select(ExperimentAssignment.arm).where(ExperimentAssignment.experiment_id == experiment.id)
        )
    )
    assert sum(arms.values()) == 40  # every new ticket drew exactly once
    assert set(arms) <= {"A", "B"}
    first = experiments.arm_for(db, experiment.key, created[0].id)
    assert all(experiments.arm_for(db, experiment.key, created[0].id) == first for _ in range(5))
    results = experiments.experiment_results(db, lead, experiment)
    by_arm = {arm.arm: arm for arm in results.arms}
    # Both arms hold tickets (all 40 in one arm has probability 2^-39).
    assert by_arm["A"].measured + by_arm["B"].measured == 40
    assert by_arm["B"].estimate == 1.0
    assert by_arm["A"].estimate is not None
    assert by_arm["A"].estimate < 1.0  # fails only if all 20 even tickets drew B (2^-20)
    ((variant, comparison, sentence),) = results.comparisons
    assert variant == "B"
    assert comparison is not None
    assert comparison.test == "two-proportion z-test"
    assert comparison.effect == pytest.approx(1.0 - by_arm["A"].estimate)
    assert sentence.startswith("variant B ")
    experiments.stop_experiment(db, lead, experiment)
    later = make_ticket(db)
    assert experiments.arm_for(db, experiment.key, later.id) is None
