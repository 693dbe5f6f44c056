"""Request and response shapes of the triage API."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from opsdesk.triage.models import (
    GroupAssignment,
    KeywordRuleRow,
    RoutingRule,
    TriageCategory,
    TriageModel,
    TriagePrediction,
    TriageSettings,
)
from opsdesk.triage.routing_rules import Evaluation

if TYPE_CHECKING:
    from opsdesk.triage.service.accuracy import AccuracyReport


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CategoryIn(Strict):
    path: str = Field(min_length=1, max_length=120)
    label: str | None = Field(default=None, max_length=120)
    description: str = ""


class CategoryPatch(Strict):
    label: str | None = Field(default=None, max_length=120)
    is_active: bool | None = None


class CategoryOut(BaseModel):
    id: int
    path: str
    label: str
    parent: str | None
    is_active: bool

    @classmethod
    def of(cls, row: TriageCategory) -> CategoryOut:
        return cls(id=row.id, path=row.path, label=row.label, parent=row.parent_path, is_active=row.is_active)


class CorrectionIn(Strict):
    category: str = Field(min_length=1, max_length=120)


class CorrectionOut(BaseModel):
    ticket_id: int
    category: str
    predicted: str | None
    corrected: bool


class KeywordRuleIn(Strict):
    category: str
    pattern: str
    is_regex: bool = False
    weight: float = 1.0


class KeywordRuleOut(BaseModel):
    id: int
    category: str
    pattern: str
    is_regex: bool
    weight: float

    @classmethod
    def of(cls, row: KeywordRuleRow) -> KeywordRuleOut:
        return cls(
            id=row.id, category=row.category, pattern=row.pattern, is_regex=row.is_regex, weight=row.weight
        )


class SettingsIn(Strict):
    target_precision: float | None = None
    needs_triage_group_id: int | None = None
    auto_assign: bool | None = None


class SettingsOut(BaseModel):
    target_precision: float
    needs_triage_group_id: int | None
    auto_assign: bool

    @classmethod
    def of(cls, row: TriageSettings) -> SettingsOut:
        return cls(
            target_precision=row.target_precision,
            needs_triage_group_id=row.needs_triage_group_id,
            auto_assign=row.auto_assign,
        )


class ModelOut(BaseModel):
    version: int
    kind: str
    is_active: bool
    n_train: int
    accuracy: float
    macro_f1: float
    baseline_accuracy: float
    target_precision: float
    train_seconds: float
    thresholds: dict[str, Any]
    per_category: dict[str, Any]
    notes: str
    trained_by: str
    trained_at: datetime
    activated_at: datetime | None

    @classmethod
    def of(cls, row: TriageModel) -> ModelOut:
        return cls(
            version=row.version,
            kind=row.kind,
            is_active=row.is_active,
            n_train=row.n_train,
            accuracy=row.accuracy,
            macro_f1=row.macro_f1,
            baseline_accuracy=row.baseline_accuracy,
            target_precision=row.target_precision,
            train_seconds=row.train_seconds,
            thresholds=row.thresholds,
            per_category=(row.metrics or {}).get("per_category", {}),
            notes=row.notes,
            trained_by=row.trained_by,
            trained_at=row.trained_at,
            activated_at=row.activated_at,
        )


class TrainIn(Strict):
    # default: the cascade ("embeddings") where the extra is installed, else the fast model
    kind: str | None = None
    activate: bool = True


class TrainQueuedOut(BaseModel):
    job_id: int
    status: str


class PredictionOut(BaseModel):
    ticket_id: int
    source: str
    model_version: int | None
    category: str | None
    confidence: float
    threshold: float
    outcome: str
    reason: str
    top_words: list[Any]
    sentiment: str
    language: str | None
    entities: list[Any]
    suggested_priority: str
    corrected_category: str | None
    created_at: datetime

    @classmethod
    def of(cls, row: TriagePrediction) -> PredictionOut:
        return cls(
            ticket_id=row.ticket_id,
            source=row.source,
            model_version=row.model_version,
            category=row.category,
            confidence=row.confidence,
            threshold=row.threshold,
            outcome=row.outcome,
            reason=row.reason,
            top_words=row.top_words or [],
            sentiment=row.sentiment,
            language=row.language,
            entities=row.entities or [],
            suggested_priority=row.suggested_priority,
            corrected_category=row.corrected_category,
            created_at=row.created_at,
        )


class ConditionIn(Strict):
    field: str
    op: str
    value: Any = None


class RuleIn(Strict):
    name: str
    match: str = "all"
    conditions: list[ConditionIn] = Field(default_factory=list)
    actions: dict[str, Any] = Field(default_factory=dict)
    is_active: bool = True


class RuleSetIn(Strict):
    rules: list[RuleIn]


class RuleOut(BaseModel):
    id: int
    position: int
    name: str
    match: str
    conditions: list[Any]
    actions: dict[str, Any]
    is_active: bool

    @classmethod
    def of(cls, row: RoutingRule) -> RuleOut:
        return cls(
            id=row.id,
            position=row.position,
            name=row.name,
            match=row.match,
            conditions=row.conditions or [],
            actions=row.actions or {},
            is_active=row.is_active,
        )


class DryRunIn(Strict):
    ticket_id: int
    rules: list[RuleIn] | None = None


class RuleTraceOut(BaseModel):
    rule_id: int | None
    name: str
    matched: bool
    reasons: list[str]


class DryRunOut(BaseModel):
    rule: str | None
    actions: dict[str, Any]
    explanation: str
    trace: list[RuleTraceOut]

    @classmethod
    def of(cls, evaluation: Evaluation) -> DryRunOut:
        return cls(
            rule=evaluation.rule.name if evaluation.rule is not None else None,
            actions=dict(evaluation.rule.actions) if evaluation.rule is not None else {},
            explanation=evaluation.explanation,
            trace=[
                RuleTraceOut(
                    rule_id=item.rule_id, name=item.name, matched=item.matched, reasons=list(item.reasons)
                )
                for item in evaluation.trace
            ],
        )


class GroupAssignmentIn(Strict):
    mode: str
    senior_level: int = 2
    required_skills: list[str] = Field(default_factory=list)


class GroupAssignmentOut(BaseModel):
    group_id: int
    mode: str
    senior_level: int
    required_skills: list[str]

    @classmethod
    def of(cls, row: GroupAssignment) -> GroupAssignmentOut:
        return cls(
            group_id=row.group_id,
            mode=row.mode,
            senior_level=row.senior_level,
            required_skills=list(row.required_skills or []),
        )


class AvailabilityIn(Strict):
    availability: str


class AvailabilityOut(BaseModel):
    user_id: int
    availability: str


class BacklogOut(BaseModel):
    assigned: int


class CategoryAccuracyOut(BaseModel):
    category: str
    predicted: int
    correct: int
    precision: float | None
    auto: int
    overridden: int


class AccuracyOut(BaseModel):
    model_version: int | None
    days: int
    classified: int
    auto: int
    handoff: int
    kept: int
    overridden: int
    precision: float | None
    override_rate: float | None
    handoff_rate: float | None
    categories: list[CategoryAccuracyOut]

    @classmethod
    def of(cls, report: AccuracyReport) -> AccuracyOut:
        return cls(
            model_version=report.model_version,
            days=report.days,
            classified=report.classified,
            auto=report.auto,
            handoff=report.handoff,
            kept=report.kept,
            overridden=report.overridden,
            precision=report.precision,
            override_rate=report.override_rate,
            handoff_rate=report.handoff_rate,
            categories=[
                CategoryAccuracyOut(
                    category=item.category,
                    predicted=item.predicted,
                    correct=item.correct,
                    precision=item.precision,
                    auto=item.auto,
                    overridden=item.overridden,
                )
                for item in report.categories
            ],
        )
