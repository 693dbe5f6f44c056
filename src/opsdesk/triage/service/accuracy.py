"""How well triage does, live: per-category precision of the model's predictions against the
category tickets ended up with, how often agents override an automatic category, and how often
tickets are handed to a person.

Definitions (one place, used by the page and the API):
- precision of category c = predictions of c whose ticket's category is c / predictions of c on
  tickets that have a category (the truth, set by the model and left alone, or set by a person);
- override rate = automatic categories a person changed / automatic categories;
- hand-off rate = hand-offs / (automatic + hand-offs); tickets that came with a category are
  counted apart (``kept``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.auth.actor import Actor
from opsdesk.auth.permissions import Permission, require
from opsdesk.tickets.models import Ticket
from opsdesk.triage.enums import Outcome
from opsdesk.triage.models import TriagePrediction
from opsdesk.triage.service.registry import active_model_row


@dataclass(slots=True)
class CategoryAccuracy:
    category: str
    predicted: int = 0
    correct: int = 0
    auto: int = 0
    overridden: int = 0

    @property
    def precision(self) -> float | None:
        return round(self.correct / self.predicted, 4) if self.predicted else None


@dataclass(slots=True)
class AccuracyReport:
    model_version: int | None
    days: int
    classified: int
    auto: int
    handoff: int
    kept: int
    overridden: int
    categories: list[CategoryAccuracy] = field(default_factory=list)

    @property
    def override_rate(self) -> float | None:
        return round(self.overridden / self.auto, 4) if self.auto else None

    @property
    def handoff_rate(self) -> float | None:
        decided = self.auto + self.handoff
        return round(self.handoff / decided, 4) if decided else None

    @property
    def precision(self) -> float | None:
        predicted = sum(item.predicted for item in self.categories)
        correct = sum(item.correct for item in self.categories)
        return round(correct / predicted, 4) if predicted else None


def accuracy_report(
    session: Session, actor: Actor, *, days: int = 30, model_version: int | None = None
) -> AccuracyReport:
    require(actor, Permission.REPORT_READ)
    if model_version is None:
        active = active_model_row(session)
        model_version = active.version if active is not None else None
    since = clock.now() - timedelta(days=days)
    query = (
        select(
            TriagePrediction.category,
            TriagePrediction.outcome,
            TriagePrediction.corrected_category,
            Ticket.category,
        )
        .join(Ticket, Ticket.id == TriagePrediction.ticket_id)
        .where(TriagePrediction.created_at >= since)
    )
    query = (
        query.where(TriagePrediction.model_version == model_version)
        if model_version is not None
        else query.where(TriagePrediction.model_version.is_(None))
    )
    report = AccuracyReport(model_version, days, 0, 0, 0, 0, 0)
    per: dict[str, CategoryAccuracy] = {}
    for predicted, outcome, corrected, final in session.execute(query):
        report.classified += 1
        if outcome == Outcome.AUTO.value:
            report.auto += 1
            if corrected is not None and corrected != predicted:
                report.overridden += 1
        elif outcome == Outcome.HANDOFF.value:
            report.handoff += 1
        else:
            report.kept += 1
        if predicted is None:
            continue
        item = per.setdefault(predicted, CategoryAccuracy(predicted))
        if outcome == Outcome.AUTO.value:
            item.auto += 1
            if corrected is not None and corrected != predicted:
                item.overridden += 1
        if final is not None:
            item.predicted += 1
            item.correct += int(final == predicted)
    report.categories = sorted(per.values(), key=lambda item: item.category)
    return report
