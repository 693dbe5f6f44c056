"""Classifying a new ticket, in the transaction that created it (``triage.classify``).

For every new ticket: the category (active model, or the keyword rules at cold start) with its
confidence and the words behind it, sentiment, language, entities and a suggested priority are
stored as the ticket's prediction. Then exactly one of:
- the channel or a person already set a category: it is kept (outcome ``kept``);
- confident (confidence at or above the category's threshold, text in scope): the category is
  set on the ticket (outcome ``auto``);
- otherwise the ticket is handed to a person: tagged ``needs_triage`` and, when the team has a
  needs-triage group and the ticket has no group, put in that group (outcome ``handoff``).
Each decision writes an audit row saying why. Field changes go through
``tickets.service.update_ticket`` so the audit trail and events stay consistent.

A later category change by a person is recorded on the prediction (``triage.learn``): it feeds the
override rate and the next training run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from opsdesk import bus, clock, config_cache
from opsdesk.auth import audit
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import AuditEvent
from opsdesk.errors import FieldProblem
from opsdesk.tickets import service as tickets
from opsdesk.tickets.events import TicketCreated, TicketUpdated
from opsdesk.tickets.models import Message, Ticket
from opsdesk.triage.entities import extract_entities
from opsdesk.triage.enums import NEEDS_TRIAGE_TAG, ModelKind, Outcome
from opsdesk.triage.errors import InvalidTaxonomyError
from opsdesk.triage.events import TicketClassified
from opsdesk.triage.keyword_rules import KeywordClassifier
from opsdesk.triage.language import detect_language
from opsdesk.triage.models import TriageCategory, TriagePrediction
from opsdesk.triage.priority import suggest_priority
from opsdesk.triage.sentiment import analyze_sentiment
from opsdesk.triage.service.registry import PERSON_KINDS, active_model, ticket_text
from opsdesk.triage.service.settings import settings_view
from opsdesk.triage.service.taxonomy import category_paths, keyword_rules

TRIAGE_ACTOR = Actor.system("triage", via="triage")
_PREDICTION_ID_OF_TICKET = select(TriagePrediction.id).where(
    TriagePrediction.ticket_id == bindparam("ticket_id")
)
KEYWORD_THRESHOLD = 0.5


def _first_message_text(session: Session, ticket_id: int) -> str:
    body = session.scalar(
        select(Message.body_text).where(Message.ticket_id == ticket_id).order_by(Message.id).limit(1)
    )
    return body or ""


def predict_text(
    session: Session, text: str
) -> tuple[str, int | None, str | None, float, float, list[Any], bool, str]:
    """(source, model version, category, confidence, threshold, top words, out of scope, stage:
    ``fast``, ``encoder`` when the cascade consulted the sentence encoder, ``rules``)."""
    model = active_model(session)
    if model is not None:
        prediction = model.classifier.predict(text, thresholds=model.thresholds)
        return (
            model.kind,
            model.version,
            prediction.category,
            prediction.confidence,
            prediction.threshold,
            [[word, weight] for word, weight in prediction.top_words],
            prediction.out_of_scope,
            prediction.stage,
        )
    rules = config_cache.cached(session, "triage.keyword_classifier", _keyword_classifier)
    guess = rules.predict(text)
    return (
        ModelKind.KEYWORD_RULES.value,
        None,
        guess.category,
        guess.confidence,
        KEYWORD_THRESHOLD,
        [[word, 1.0] for word in guess.matched],
        guess.category is None,
        "rules",
    )


def _keyword_classifier(session: Session) -> KeywordClassifier:
    return KeywordClassifier(keyword_rules(session))


def classify_ticket(session: Session, ticket: Ticket) -> TriagePrediction:
    """Classify one ticket and act on the result (see the module docstring)."""
    settings = settings_view(session)
    body = _first_message_text(session, ticket.id)
    text = ticket_text(ticket.subject, body)
    source, version, category, confidence, threshold, top_words, out_of_scope, stage = predict_text(
        session, text
    )
    sentiment = analyze_sentiment(text)
    language = detect_language(text)
    entities = [entity.as_dict() for entity in extract_entities(text)]
    account = ticket.account
    priority = suggest_priority(
        text,
        sentiment=sentiment.label.value,
        category=ticket.category or category,
        account_tier=account.tier if account is not None else None,
        account_is_hot=bool(account is not None and account.is_hot),
    )
    if ticket.category:
        outcome = Outcome.KEPT
        reason = f"category {ticket.category!r} was set when the ticket was created"
    elif category is not None and not out_of_scope and confidence >= threshold:
        outcome = Outcome.AUTO
        reason = (
            f"{category!r} with confidence {confidence:.2f} "
            f"(threshold {threshold:.2f}, {_describe(version, stage)})"
        )
    else:
        outcome = Outcome.HANDOFF
        if out_of_scope:
            reason = "the text is outside what the classifier knows"
        else:
            reason = (
                f"best guess {category!r} has confidence {confidence:.2f}, under the threshold "
                f"{threshold:.2f} for a precision of {settings.target_precision:.2f}"
            )
    prediction = TriagePrediction(
        ticket_id=ticket.id,
        model_version=version,
        source=source,
        category=category,
        confidence=confidence,
        threshold=min(threshold, 1.01),
        top_words=top_words,
        sentiment=sentiment.label.value,
        language=language,
        entities=entities,
        suggested_priority=priority.priority,
        outcome=outcome.value,
        reason=reason,
        created_at=clock.now(),
    )
    session.add(prediction)
    session.flush()
    audit.record(
        session,
        TRIAGE_ACTOR,
        entity_type="ticket",
        entity_id=ticket.id,
        action="classified",
        new={
            "category": category,
            "confidence": confidence,
            "outcome": outcome.value,
            "sentiment": sentiment.label.value,
            "language": language,
            "suggested_priority": priority.priority,
            "top_words": [word for word, _ in top_words],
        },
        ticket_id=ticket.id,
        reason=reason,
    )
    changes: dict[str, Any] = {}
    if outcome is Outcome.AUTO:
        changes["category"] = category
    elif outcome is Outcome.HANDOFF:
        changes["add_tags"] = [NEEDS_TRIAGE_TAG]
        if settings.needs_triage_group_id is not None and ticket.group_id is None:
            changes["group_id"] = settings.needs_triage_group_id
    if language and not ticket.language:
        changes["language"] = language
    if changes:
        tickets.update_ticket(session, TRIAGE_ACTOR, ticket, changes)
    bus.publish(
        session,
        TicketClassified(ticket.id, category, confidence, outcome.value, version),
    )
    return prediction


def _describe(version: int | None, stage: str) -> str:
    if version is None:
        return "keyword rules"
    return f"model v{version}, sentence encoder consulted" if stage == "encoder" else f"model v{version}"


def classify_new_ticket(session: Session, event: TicketCreated) -> None:
    """``triage.classify``: the reaction to TicketCreated."""
    if not triage_enabled(session):  # cached: no query while triage is not set up
        return
    ticket = session.get(Ticket, event.ticket_id)
    if ticket is None:
        return
    existing = session.scalar(_PREDICTION_ID_OF_TICKET, {"ticket_id": ticket.id})
    if existing is not None:  # handlers may run again; a ticket is classified once
        return
    classify_ticket(session, ticket)


def _has_active_category(session: Session) -> bool:
    return (
        session.scalar(select(TriageCategory.id).where(TriageCategory.is_active.is_(True)).limit(1))
        is not None
    )


def triage_enabled(session: Session) -> bool:
    """Triage works once the team has a taxonomy (``opsdesk seed`` creates the default one);
    before that, tickets are left exactly as they came."""
    return config_cache.cached(session, "triage.enabled", _has_active_category)


def prediction_for(session: Session, ticket_id: int) -> TriagePrediction | None:
    return session.scalar(select(TriagePrediction).where(TriagePrediction.ticket_id == ticket_id))


def correct_category(session: Session, actor: Actor, ticket_id: int, category: str) -> Ticket:
    """A person names a ticket's category (the "correct the category" control, or agreeing with
    the model's guess on a handed-off ticket). Refused, changing nothing, unless ``category`` is an
    active category of the taxonomy. The change goes through ``tickets.service.update_ticket`` like
    any edit of the field (audit row by the person, ``TicketUpdated``), so :func:`record_category_change`
    records it on the prediction and it becomes a training example."""
    ticket = tickets.access_ticket(session, actor, ticket_id)
    cleaned = category.strip().lower()
    if cleaned not in category_paths(session):
        raise InvalidTaxonomyError(
            "the category is not in the taxonomy",
            fields=[FieldProblem(("category",), f"{category!r} is not an active category")],
        )
    if ticket.category != cleaned:
        tickets.update_ticket(session, actor, ticket, {"category": cleaned})
    return ticket


def record_category_change(session: Session, event: TicketUpdated) -> None:
    """``triage.learn``: a person changed the category; note it on the prediction (override rate,
    training data) and take the ticket out of the needs-triage queue."""
    if "category" not in event.changes:
        return
    last = session.execute(
        select(AuditEvent.actor_kind, AuditEvent.actor_id)
        .where(AuditEvent.ticket_id == event.ticket_id, AuditEvent.field == "category")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if last is None or last.actor_kind not in PERSON_KINDS:
        return
    prediction = prediction_for(session, event.ticket_id)
    new_category = event.changes["category"][1]
    if prediction is not None:
        prediction.corrected_category = new_category
        prediction.corrected_by_id = last.actor_id if last.actor_kind != "macro" else None
        prediction.corrected_at = clock.now()
        session.flush()
    ticket = session.get(Ticket, event.ticket_id)
    if ticket is not None and NEEDS_TRIAGE_TAG in ticket.tags and new_category:
        tickets.update_ticket(session, TRIAGE_ACTOR, ticket, {"remove_tags": [NEEDS_TRIAGE_TAG]})
        # now that a person named the category, routing can place the ticket
        from opsdesk.triage.service.routing import route_ticket

        route_ticket(session, ticket, after_handoff=True)
