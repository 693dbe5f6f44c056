"""Classifier versions: training from the team's own history, storing each version with its
held-out figures, activating, rolling back, and the in-process cache of the active model.

Training data are tickets whose category a person set or corrected: the last ``category`` change
on the ticket's audit trail made by a person (user, API token or macro), plus tickets a person
created with a category. A new version becomes active only when its held-out accuracy beats the
keyword rules on the same examples (the cold-start rules stay in charge until then).

The loaded model is cached per process, keyed by (version, artifact digest), so classifying a
ticket costs one small query and no deserialization.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from opsdesk import bus, clock
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.enums import ActorKind
from opsdesk.auth.models import AuditEvent
from opsdesk.auth.permissions import Permission, require
from opsdesk.errors import FieldProblem
from opsdesk.outbox import OutboxJob, enqueue
from opsdesk.tickets.models import Message, Ticket
from opsdesk.triage.embeddings import DEFAULT_ENCODER, embeddings_available, load_encoder
from opsdesk.triage.enums import ModelKind, Outcome, TrainingSource
from opsdesk.triage.errors import (
    InvalidTriageSettingsError,
    ModelVersionNotFoundError,
    NotEnoughTrainingDataError,
    RollbackRefusedError,
)
from opsdesk.triage.events import ModelActivated
from opsdesk.triage.keyword_rules import KeywordClassifier
from opsdesk.triage.models import TriageModel, TriagePrediction
from opsdesk.triage.service.settings import triage_settings
from opsdesk.triage.service.taxonomy import category_paths, keyword_rules

TRAIN_JOB = "triage.train"
GROWTH_TO_RETRAIN = 0.2
MIN_NEW_EXAMPLES = 20
if TYPE_CHECKING:
    # scikit-learn takes seconds to import: only processes that train or hold a model pay for it
    from opsdesk.triage.cascade import CascadeClassifier
    from opsdesk.triage.classifier import TrainedClassifier

    AnyClassifier = TrainedClassifier | CascadeClassifier

PERSON_KINDS = (ActorKind.USER.value, ActorKind.API_TOKEN.value, ActorKind.MACRO.value)
TEXT_LIMIT = 4000


@dataclass(frozen=True, slots=True)
class TrainingExample:
    ticket_id: int
    text: str
    category: str
    source: str


def ticket_text(subject: str, body: str) -> str:
    """What the classifier reads: the subject and the first message, bounded in length."""
    return f"{subject}\n{body}"[:TEXT_LIMIT]


def training_examples(session: Session) -> list[TrainingExample]:
    """Tickets whose category a person set or corrected (see the module docstring)."""
    latest: dict[int, tuple[str, Any]] = {}
    rows = session.execute(
        select(AuditEvent.ticket_id, AuditEvent.actor_kind, AuditEvent.new_value)
        .where(
            AuditEvent.entity_type == "ticket",
            AuditEvent.field == "category",
            AuditEvent.ticket_id.is_not(None),
        )
        .order_by(AuditEvent.id)
    )
    for ticket_id, actor_kind, new_value in rows:
        latest[int(ticket_id)] = (actor_kind, new_value)
    labelled: dict[int, tuple[str, str]] = {}
    predicted: dict[int, str | None] = {
        int(ticket_id): category
        for ticket_id, category in session.execute(
            select(TriagePrediction.ticket_id, TriagePrediction.category)
        )
    }
    for ticket_id, (actor_kind, value) in latest.items():
        if actor_kind in PERSON_KINDS and isinstance(value, str) and value:
            source = (
                TrainingSource.CORRECTED
                if predicted.get(ticket_id) not in (None, value)
                else TrainingSource.SET_BY_PERSON
            )
            labelled[ticket_id] = (value, source.value)
    kept = session.execute(
        select(Ticket.id, Ticket.category)
        .join(TriagePrediction, TriagePrediction.ticket_id == Ticket.id)
        .join(AuditEvent, (AuditEvent.ticket_id == Ticket.id) & (AuditEvent.action == "created"))
        .where(
            TriagePrediction.outcome == Outcome.KEPT.value,
            Ticket.category.is_not(None),
            AuditEvent.entity_type == "ticket",
            AuditEvent.actor_kind.in_(PERSON_KINDS),
        )
    )
    for ticket_id, category in kept:
        if ticket_id not in latest and category:
            labelled[int(ticket_id)] = (category, TrainingSource.SET_BY_PERSON.value)
    allowed = category_paths(session)
    labelled = {key: value for key, value in labelled.items() if value[0] in allowed}
    if not labelled:
        return []
    first_message = (
        select(Message.ticket_id, func.min(Message.id).label("message_id"))
        .where(Message.ticket_id.in_(list(labelled)))
        .group_by(Message.ticket_id)
        .subquery()
    )
    texts = session.execute(
        select(Ticket.id, Ticket.subject, Message.body_text)
        .join(first_message, first_message.c.ticket_id == Ticket.id)
        .join(Message, Message.id == first_message.c.message_id)
        .order_by(Ticket.id)
    )
    return [
        TrainingExample(int(ticket_id), ticket_text(subject, body or ""), *labelled[int(ticket_id)])
        for ticket_id, subject, body in texts
    ]


def keyword_accuracy(session: Session, examples: list[TrainingExample]) -> float:
    """How the cold-start rules do on the examples (a text the rules leave alone counts wrong)."""
    if not examples:
        return 0.0
    rules = KeywordClassifier(keyword_rules(session))
    right = sum(1 for example in examples if rules.predict(example.text).category == example.category)
    return round(right / len(examples), 4)


def _next_version(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(TriageModel.version), 0))) or 0) + 1


def store_model(
    session: Session,
    actor: Actor,
    classifier: AnyClassifier,
    *,
    baseline_accuracy: float,
    activate: bool,
    notes: str = "",
) -> TriageModel:
    """Save a trained classifier as the next version; activate it when asked and it beats the rules."""
    blob = classifier.to_bytes()
    report = classifier.report
    row = TriageModel(
        version=_next_version(session),
        kind=classifier.kind,
        is_active=False,
        artifact=blob,
        artifact_sha256=hashlib.sha256(blob).hexdigest(),
        n_train=report.n_train,
        accuracy=report.accuracy,
        macro_f1=report.macro_f1,
        baseline_accuracy=baseline_accuracy,
        target_precision=report.target_precision,
        train_seconds=report.train_seconds,
        metrics=report.as_dict(),
        thresholds=dict(classifier.thresholds),
        notes=notes,
        trained_by=actor.name,
        trained_at=clock.now(),
    )
    session.add(row)
    session.flush()
    beats_rules = report.accuracy > baseline_accuracy
    audit.record(
        session,
        actor,
        entity_type="triage_model",
        entity_id=row.id,
        action="trained",
        new={"version": row.version, "accuracy": report.accuracy, "n_train": report.n_train},
        reason=f"held-out accuracy {report.accuracy:.3f} vs keyword rules {baseline_accuracy:.3f}",
    )
    if activate and beats_rules:
        activate_version(
            session, actor, row.version, reason="new version beats the keyword rules on held-out data"
        )
    elif activate:
        row.notes = (notes + " " if notes else "") + "not activated: does not beat the keyword rules"
    return row


def default_kind() -> str:
    """The cascade where its encoder is installed (the extra), else the fast model."""
    return ModelKind.EMBEDDINGS.value if embeddings_available() else ModelKind.TFIDF_LINEAR.value


def train_model(
    session: Session,
    actor: Actor,
    *,
    kind: str | None = None,
    activate: bool = True,
    encoder: str | None = None,
) -> TriageModel:
    """Train a new version from the team's labelled tickets: the fast model, or (``embeddings``)
    the cascade of the fast model and the sentence encoder named ``encoder`` (default MiniLM);
    without that encoder, the fast model, and the version's notes say so."""
    from opsdesk.triage.cascade import train_cascade
    from opsdesk.triage.classifier import TrainingDataError, train_classifier

    require(actor, Permission.RULE_MANAGE)
    kind = kind or default_kind()
    examples = training_examples(session)
    texts = [example.text for example in examples]
    labels = [example.category for example in examples]
    target_precision = triage_settings(session).target_precision
    encoder_name = encoder or DEFAULT_ENCODER
    sentence_encoder = load_encoder(encoder_name) if kind == ModelKind.EMBEDDINGS.value else None
    notes = ""
    if kind == ModelKind.EMBEDDINGS.value and sentence_encoder is None:
        notes = (
            f"sentence encoder {encoder_name!r} not installed (opsdesk[embeddings]): trained the fast model"
        )
    classifier: AnyClassifier
    try:
        if sentence_encoder is not None:
            classifier = train_cascade(
                texts,
                labels,
                encoder=sentence_encoder,
                encoder_name=encoder_name,
                target_precision=target_precision,
            )
        else:
            classifier = train_classifier(texts, labels, target_precision=target_precision)
    except TrainingDataError as error:
        raise NotEnoughTrainingDataError(
            f"cannot train from {len(examples)} labelled tickets: {error}"
        ) from error
    return store_model(
        session,
        actor,
        classifier,
        baseline_accuracy=keyword_accuracy(session, examples),
        activate=activate,
        notes=notes,
    )


def request_training(
    session: Session,
    actor: Actor,
    *,
    kind: str | None = None,
    activate: bool = True,
    encoder: str | None = None,
) -> OutboxJob:
    """Queue a training run for the job runner (one pending run at a time); the kind defaults to
    :func:`default_kind`."""
    require(actor, Permission.RULE_MANAGE)
    kind = kind or default_kind()
    if kind not in {member.value for member in ModelKind} or kind == ModelKind.KEYWORD_RULES.value:
        raise InvalidTriageSettingsError(
            "unknown model kind", fields=[FieldProblem(("kind",), "must be tfidf_linear or embeddings")]
        )
    pending = session.scalar(
        select(OutboxJob).where(OutboxJob.kind == TRAIN_JOB, OutboxJob.status == "pending").limit(1)
    )
    if pending is not None:
        return pending
    audit.record(
        session,
        actor,
        entity_type="triage_model",
        entity_id=None,
        action="training_requested",
        new={"kind": kind},
    )
    payload: dict[str, Any] = {"kind": kind, "activate": activate, "requested_by": actor.name}
    if encoder:
        payload["encoder"] = encoder
    return enqueue(session, TRAIN_JOB, payload)


def record_training_skipped(session: Session, actor: Actor, reason: str) -> None:
    audit.record(
        session, actor, entity_type="triage_model", entity_id=None, action="training_skipped", reason=reason
    )


def request_training_if_grown(session: Session, actor: Actor) -> OutboxJob | None:
    """Queue training when labelled tickets grew by a fifth (and at least 20) since the last version."""
    examples = len(training_examples(session))
    last = session.scalar(select(TriageModel).order_by(TriageModel.version.desc()).limit(1))
    trained_on = last.n_train if last is not None else 0
    grown = examples - trained_on
    if grown < MIN_NEW_EXAMPLES or grown < GROWTH_TO_RETRAIN * trained_on:
        return None
    return request_training(session, actor)


def list_models(session: Session) -> list[TriageModel]:
    return list(session.scalars(select(TriageModel).order_by(TriageModel.version.desc())))


def model_by_version(session: Session, version: int) -> TriageModel:
    row = session.scalar(select(TriageModel).where(TriageModel.version == version))
    if row is None:
        raise ModelVersionNotFoundError(f"model version {version} not found")
    return row


def active_model_row(session: Session) -> TriageModel | None:
    return session.scalar(select(TriageModel).where(TriageModel.is_active.is_(True)))


def activate_version(
    session: Session, actor: Actor, version: int, *, reason: str = "activated by hand"
) -> TriageModel:
    require(actor, Permission.RULE_MANAGE)
    row = model_by_version(session, version)
    previous = active_model_row(session)
    if previous is not None and previous.version == version:
        return row
    session.execute(update(TriageModel).where(TriageModel.is_active.is_(True)).values(is_active=False))
    row.is_active = True
    row.activated_at = clock.now()
    settings = triage_settings(session)
    if abs(settings.target_precision - row.target_precision) > 1e-9:
        row.thresholds = loaded_classifier(row).thresholds_for(settings.target_precision)
        row.target_precision = settings.target_precision
    session.flush()
    audit.record(
        session,
        actor,
        entity_type="triage_model",
        entity_id=row.id,
        action="activated",
        old=previous.version if previous is not None else None,
        new=row.version,
        reason=reason,
    )
    bus.publish(session, ModelActivated(row.version, previous.version if previous is not None else None))
    return row


def rollback(session: Session, actor: Actor) -> TriageModel | None:
    """Put the previously active version back (or the keyword rules when there was none)."""
    require(actor, Permission.RULE_MANAGE)
    current = active_model_row(session)
    if current is None:
        raise RollbackRefusedError("no model is active: the keyword rules are already in charge")
    earlier = session.scalar(
        select(TriageModel)
        .where(TriageModel.version < current.version, TriageModel.activated_at.is_not(None))
        .order_by(TriageModel.version.desc())
        .limit(1)
    )
    if earlier is None:
        current.is_active = False
        session.flush()
        audit.record(
            session,
            actor,
            entity_type="triage_model",
            entity_id=current.id,
            action="deactivated",
            old=current.version,
            new=None,
            reason="rolled back to the keyword rules",
        )
        bus.publish(session, ModelActivated(0, current.version))
        return None
    return activate_version(
        session, actor, earlier.version, reason=f"rolled back from version {current.version}"
    )


def retune_thresholds(session: Session, target_precision: float) -> None:
    """Recompute the active model's thresholds for a new target precision (no retraining)."""
    row = active_model_row(session)
    if row is None:
        return
    row.thresholds = loaded_classifier(row).thresholds_for(target_precision)
    row.target_precision = target_precision
    session.flush()


# ---------------------------------------------------------------- in-process cache

_cache: dict[tuple[int, str], AnyClassifier] = {}
_cache_lock = threading.Lock()
_fallback_thresholds: dict[tuple[int, str, float], dict[str, float]] = {}


def loaded_classifier(row: TriageModel) -> AnyClassifier:
    key = (row.version, row.artifact_sha256)
    found = _cache.get(key)
    if found is not None:
        return found
    with _cache_lock:
        found = _cache.get(key)
        if found is None:
            from opsdesk.triage.cascade import model_from_bytes

            found = model_from_bytes(row.artifact, load_encoder)
            if len(_cache) >= 4:  # keep a few versions: the active one and recent rollbacks
                _cache.pop(next(iter(_cache)))
            _cache[key] = found
    return found


@dataclass(frozen=True, slots=True)
class ActiveModel:
    version: int
    kind: str
    thresholds: dict[str, float]
    classifier: AnyClassifier


def active_model(session: Session) -> ActiveModel | None:
    """The active version, loaded once per process; the artifact column is read only on a miss."""
    head = session.execute(
        select(
            TriageModel.id,
            TriageModel.version,
            TriageModel.artifact_sha256,
            TriageModel.kind,
            TriageModel.thresholds,
            TriageModel.target_precision,
        ).where(TriageModel.is_active.is_(True))
    ).first()
    if head is None:
        return None
    _row_id, version, digest, kind, thresholds, target_precision = head
    classifier = _cache.get((version, digest))
    if classifier is None:
        row = session.get_one(TriageModel, _row_id)
        classifier = loaded_classifier(row)
    from opsdesk.triage.cascade import CascadeClassifier  # a model is loaded: scikit-learn is too
    from opsdesk.triage.classifier import TrainedClassifier

    if isinstance(classifier, CascadeClassifier) and classifier.encoder is None:
        # a cascade whose encoder is not installed here: its fast model answers alone, with the
        # thresholds it would have on its own
        key = (version, digest, float(target_precision))
        fallback = _fallback_thresholds.get(key)
        if fallback is None:
            fallback = classifier.fast.thresholds_for(float(target_precision))
            _fallback_thresholds.clear()  # only the active version's matter
            _fallback_thresholds[key] = fallback
        return ActiveModel(version, ModelKind.TFIDF_LINEAR.value, fallback, classifier.fast)
    legacy = isinstance(classifier, TrainedClassifier) and classifier.features.use_embeddings
    if legacy and classifier.features.encoder is None:  # type: ignore[union-attr]
        return None  # stored before the cascade and the extra is gone: the keyword rules
    return ActiveModel(version, kind, {str(k): float(v) for k, v in (thresholds or {}).items()}, classifier)
