"""Experiments: A/B tests of routing rules, macros and SLA windows.

- An experiment names the metric it moves, its arms (the first is the control), and the smallest
  effect worth detecting; the sample size per arm is computed when it is created, before any
  data (:mod:`opsdesk.insights.significance`).
- While it runs, every new ticket draws an arm at random (``random.SystemRandom``), once: the
  draw is stored, so :func:`arm_for` answers the same arm every time it is asked, and the domain
  that owns the rule, macro or SLA window applies the variant the ticket drew.
- Results compare each variant with the control on the tickets of each arm, with the test suited
  to the metric: the two-proportion z-test for rates, Mann-Whitney U for durations; each with a
  confidence interval and a plain sentence.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opsdesk import clock, config_cache
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem
from opsdesk.insights import significance
from opsdesk.insights.definitions import METRICS, base_from, not_merged
from opsdesk.insights.enums import ExperimentStatus, ExperimentSubject, MetricKind
from opsdesk.insights.errors import ExperimentNotFoundError, ExperimentStateError, InvalidExperimentError
from opsdesk.insights.models import Experiment, ExperimentAssignment
from opsdesk.tickets.models import Ticket

_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,79}$")
_random = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class NewExperiment:
    key: str
    name: str
    subject: str
    metric: str
    arms: tuple[str, ...]
    baseline: float
    minimum_effect: float
    baseline_spread: float | None = None
    subject_ref: str = ""
    hypothesis: str = ""
    alpha: float = 0.05
    power: float = 0.8


def _problems(session: Session, new: NewExperiment) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if not _KEY.match(new.key):
        problems.append(FieldProblem(("key",), "2-80 lowercase letters, digits, '.', '_' or '-'"))
    elif session.scalar(select(Experiment.id).where(Experiment.key == new.key)) is not None:
        problems.append(FieldProblem(("key",), "already used by another experiment", "duplicate"))
    if not new.name.strip():
        problems.append(FieldProblem(("name",), "must not be empty"))
    if new.subject not in {subject.value for subject in ExperimentSubject}:
        problems.append(FieldProblem(("subject",), "must be routing_rule, macro or sla_window"))
    definition = METRICS.get(new.metric)
    if (
        definition is None
        or definition.unavailable
        or definition.kind not in (MetricKind.RATE, MetricKind.DURATION)
    ):
        problems.append(FieldProblem(("metric",), "must be an available rate or duration metric"))
    arms = [arm.strip() for arm in new.arms]
    if len(arms) < 2 or len(set(arms)) != len(arms) or any(not arm or len(arm) > 40 for arm in arms):
        problems.append(FieldProblem(("arms",), "at least two distinct names of 1-40 characters"))
    if not (0 < new.alpha < 0.5) or not (0.5 <= new.power < 1):
        problems.append(FieldProblem(("alpha",), "alpha in (0, 0.5) and power in [0.5, 1)"))
    return problems


def required_per_arm(new: NewExperiment) -> int:
    definition = METRICS[new.metric]
    if definition.kind is MetricKind.RATE:
        return significance.sample_size_two_proportions(
            new.baseline, new.minimum_effect, alpha=new.alpha, power=new.power
        )
    if new.baseline_spread is None:
        raise ValueError("the spread of log-durations must be positive")
    return significance.sample_size_durations(
        new.baseline_spread, new.minimum_effect, alpha=new.alpha, power=new.power
    )


def create_experiment(session: Session, actor: Actor, new: NewExperiment) -> Experiment:
    require(actor, Permission.RULE_MANAGE)
    problems = _problems(session, new)
    required = 0
    if not problems:
        try:
            required = required_per_arm(new)
        except ValueError as error:
            problems.append(FieldProblem(("minimum_effect",), str(error)))
    if problems:
        raise InvalidExperimentError("the experiment is not valid", fields=problems)
    experiment = Experiment(
        key=new.key,
        name=new.name.strip(),
        subject=new.subject,
        subject_ref=new.subject_ref,
        hypothesis=new.hypothesis,
        metric=new.metric,
        arms=[arm.strip() for arm in new.arms],
        status=ExperimentStatus.DRAFT.value,
        baseline=new.baseline,
        baseline_spread=new.baseline_spread,
        minimum_effect=new.minimum_effect,
        alpha=new.alpha,
        power=new.power,
        required_per_arm=required,
        created_by_id=actor.user_id,
        created_at=clock.now(),
    )
    session.add(experiment)
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="experiment",
        entity_id=experiment.id,
        action="created",
        new={
            "key": experiment.key,
            "metric": experiment.metric,
            "arms": experiment.arms,
            "required_per_arm": required,
        },
    )
    return experiment


def access_experiment(session: Session, actor: Actor, experiment_id: int) -> Experiment:
    require(actor, Permission.REPORT_READ)
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise ExperimentNotFoundError(f"experiment {experiment_id} does not exist")
    return experiment


def list_experiments(session: Session, actor: Actor) -> list[Experiment]:
    require(actor, Permission.REPORT_READ)
    return list(session.scalars(select(Experiment).order_by(Experiment.id.desc())))


def _transition(session: Session, actor: Actor, experiment: Experiment, target: ExperimentStatus) -> None:
    require(actor, Permission.RULE_MANAGE)
    allowed = {
        ExperimentStatus.RUNNING: ExperimentStatus.DRAFT,
        ExperimentStatus.STOPPED: ExperimentStatus.RUNNING,
    }
    if experiment.status != allowed[target].value:
        raise ExperimentStateError(f"a {experiment.status} experiment cannot become {target.value}")
    old = experiment.status
    experiment.status = target.value
    if target is ExperimentStatus.RUNNING:
        experiment.started_at = clock.now()
    else:
        experiment.stopped_at = clock.now()
    session.flush()
    audit.record_changes(
        session,
        actor,
        entity_type="experiment",
        entity_id=experiment.id,
        changes={"status": (old, target.value)},
    )


def start_experiment(session: Session, actor: Actor, experiment: Experiment) -> None:
    _transition(session, actor, experiment, ExperimentStatus.RUNNING)


def stop_experiment(session: Session, actor: Actor, experiment: Experiment) -> None:
    _transition(session, actor, experiment, ExperimentStatus.STOPPED)


def _assign(session: Session, experiment: Experiment, ticket_id: int) -> str:
    existing = session.scalar(
        select(ExperimentAssignment.arm).where(
            ExperimentAssignment.experiment_id == experiment.id, ExperimentAssignment.ticket_id == ticket_id
        )
    )
    if existing is not None:
        return existing
    arm = _random.choice(list(experiment.arms))
    try:
        with session.begin_nested():
            session.add(
                ExperimentAssignment(
                    experiment_id=experiment.id, ticket_id=ticket_id, arm=arm, assigned_at=clock.now()
                )
            )
    except IntegrityError:  # drawn concurrently by another transaction: that draw stands
        return str(
            session.scalar(
                select(ExperimentAssignment.arm).where(
                    ExperimentAssignment.experiment_id == experiment.id,
                    ExperimentAssignment.ticket_id == ticket_id,
                )
            )
        )
    return arm


def arm_for(session: Session, experiment_key: str, ticket_id: int) -> str | None:
    """The arm a ticket is in for a running experiment (drawn now if not yet); None if the
    experiment is not running. Owning domains call this to pick the variant to apply."""
    experiment = session.scalar(
        select(Experiment).where(
            Experiment.key == experiment_key, Experiment.status == ExperimentStatus.RUNNING.value
        )
    )
    if experiment is None:
        return None
    return _assign(session, experiment, ticket_id)


def _running_experiment_ids(session: Session) -> tuple[int, ...]:
    return tuple(
        session.scalars(
            select(Experiment.id)
            .where(Experiment.status == ExperimentStatus.RUNNING.value)
            .order_by(Experiment.id)
        )
    )


def assign_new_ticket(session: Session, ticket_id: int) -> None:
    """Every running experiment draws an arm for a new ticket (a reaction to TicketCreated).

    Which experiments run is configuration, cached per process: most tickets arrive while none
    runs, and then this costs no query."""
    for experiment_id in config_cache.cached(
        session, "insights.running_experiments", _running_experiment_ids
    ):
        experiment = session.get(Experiment, experiment_id)
        if experiment is not None and experiment.status == ExperimentStatus.RUNNING.value:
            _assign(session, experiment, ticket_id)


@dataclass(frozen=True, slots=True)
class ArmResult:
    arm: str
    assigned: int
    measured: int
    estimate: float | None  # rate, or median seconds


@dataclass(slots=True)
class ExperimentResults:
    experiment: Experiment
    metric_label: str
    kind: MetricKind
    arms: list[ArmResult] = field(default_factory=list)
    comparisons: list[tuple[str, significance.Comparison | None, str]] = field(default_factory=list)

    @property
    def progress(self) -> float:
        """Smallest arm's measured tickets over the required sample size (1.0 = enough)."""
        if not self.arms or self.experiment.required_per_arm <= 0:
            return 0.0
        return min(arm.measured for arm in self.arms) / self.experiment.required_per_arm


def experiment_results(session: Session, actor: Actor, experiment: Experiment) -> ExperimentResults:
    require(actor, Permission.REPORT_READ)
    definition = METRICS[experiment.metric]
    assert definition.value is not None
    assigned_counts: dict[str, int] = defaultdict(int)
    for (arm,) in session.execute(
        select(ExperimentAssignment.arm).where(ExperimentAssignment.experiment_id == experiment.id)
    ):
        assigned_counts[arm] += 1
    statement = (
        select(ExperimentAssignment.arm, definition.value)
        .select_from(base_from(definition, set()))
        .join(ExperimentAssignment, ExperimentAssignment.ticket_id == Ticket.id)
        .where(
            ExperimentAssignment.experiment_id == experiment.id,
            definition.population,
            not_merged(),
            definition.value.is_not(None),
        )
    )
    values: dict[str, list[float]] = defaultdict(list)
    for arm, value in session.execute(statement):
        values[arm].append(float(value))
    results = ExperimentResults(experiment, definition.label.lower(), definition.kind)
    for arm in experiment.arms:
        observed = values.get(arm, [])
        estimate: float | None = None
        if observed:
            ordered = sorted(observed)
            estimate = (
                sum(observed) / len(observed)
                if definition.kind is MetricKind.RATE
                else (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2
            )
        results.arms.append(ArmResult(arm, assigned_counts.get(arm, 0), len(observed), estimate))
    control = experiment.arms[0]
    for arm in experiment.arms[1:]:
        comparison: significance.Comparison | None = None
        try:
            if definition.kind is MetricKind.RATE:
                comparison = significance.two_proportion_z_test(
                    round(sum(values[control])),
                    len(values[control]),
                    round(sum(values[arm])),
                    len(values[arm]),
                    alpha=experiment.alpha,
                )
            else:
                comparison = significance.mann_whitney(values[control], values[arm], alpha=experiment.alpha)
        except ValueError as reason:
            results.comparisons.append((arm, None, f"variant {arm}: not enough data yet ({reason})"))
            continue
        sentence = significance.sentence(
            arm, results.metric_label, comparison, higher_is_better=definition.higher_is_better
        )
        results.comparisons.append((arm, comparison, sentence))
    return results
