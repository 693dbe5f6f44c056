"""Classification in the ticket-creation transaction: automatic category, hand-off, kept
categories, learning from corrections, training, activation and rollback."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.auth.models import AuditEvent
from opsdesk.outbox import OutboxJob
from opsdesk.tickets import service as tickets
from opsdesk.tickets.models import Ticket
from opsdesk.triage.enums import NEEDS_TRIAGE_GROUP
from opsdesk.triage.errors import NotEnoughTrainingDataError, RollbackRefusedError
from opsdesk.triage.models import TriageModel, TriagePrediction
from opsdesk.triage.seed import seed_defaults
from opsdesk.triage.service import registry
from opsdesk.triage.service.accuracy import accuracy_report
from opsdesk.triage.service.classification import prediction_for
from opsdesk.triage.service.settings import triage_settings, update_triage_settings
from tests.support.factories import SYSTEM, make_account, make_ticket, make_user, staff_actor
from tests.triage.generated import labelled_texts


def _prediction(db: Session, ticket: Ticket) -> TriagePrediction:
    found = prediction_for(db, ticket.id)
    assert found is not None
    return found


def _audit(db: Session, ticket: Ticket, action: str) -> list[AuditEvent]:
    return list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.ticket_id == ticket.id, AuditEvent.action == action)
            .order_by(AuditEvent.id)
        )
    )


def test_without_taxonomy_tickets_are_left_as_they_came(db: Session) -> None:
    ticket = make_ticket(db, subject="Refund", body="Please refund me")
    assert prediction_for(db, ticket.id) is None
    assert ticket.category is None
    assert ticket.tags == []


def test_keyword_rules_set_a_confident_category_and_explain(db: Session) -> None:
    seed_defaults(db)
    make_account(db, domain="acme.test", tier="enterprise")
    ticket = make_ticket(
        db,
        subject="Refund for INV-4410",
        body="This is unacceptable. Please refund the $120.00 and give me my money back.",
        requester_email="jo@acme.test",
    )
    prediction = _prediction(db, ticket)
    assert ticket.category == "billing/refund"
    assert (prediction.outcome, prediction.source, prediction.model_version) == (
        "auto",
        "keyword_rules",
        None,
    )
    assert prediction.confidence == 0.8
    assert [word for word, _ in prediction.top_words] == ["refund", "money back"]
    assert prediction.sentiment == "negative"
    assert prediction.language == "en"
    assert ticket.language == "en"
    assert {(entity["kind"], entity["value"]) for entity in prediction.entities} == {
        ("invoice_number", "INV-4410"),
        ("amount", "12000 USD"),
    }
    assert prediction.suggested_priority == "urgent"  # negative and enterprise on a normal ticket
    classified = _audit(db, ticket, "classified")
    assert len(classified) == 1
    assert classified[0].reason == "'billing/refund' with confidence 0.80 (threshold 0.50, keyword rules)"
    category_rows = db.scalars(
        select(AuditEvent).where(AuditEvent.ticket_id == ticket.id, AuditEvent.field == "category")
    ).all()
    assert [(row.actor_name, row.new_value) for row in category_rows] == [("triage", "billing/refund")]


def test_unsure_ticket_goes_to_the_needs_triage_queue(db: Session) -> None:
    seed_defaults(db)
    ticket = make_ticket(db, subject="Hello", body="Something odd happened with the thing today.")
    prediction = _prediction(db, ticket)
    assert prediction.outcome == "handoff"
    assert ticket.category is None
    assert ticket.tags == ["needs_triage"]
    assert ticket.group is not None
    assert ticket.group.name == NEEDS_TRIAGE_GROUP
    assert _audit(db, ticket, "classified")[0].reason == "the text is outside what the classifier knows"
    routed = _audit(db, ticket, "routed")
    assert routed[0].reason == "waiting in the needs-triage queue until a person names the category"


def test_a_category_set_at_creation_is_kept(db: Session) -> None:
    seed_defaults(db)
    ticket = make_ticket(db, subject="Refund", body="Please refund me", category="sales")
    assert ticket.category == "sales"
    assert _prediction(db, ticket).outcome == "kept"
    assert _prediction(db, ticket).category == "billing/refund"


def test_person_correcting_the_category_is_recorded_and_leaves_the_queue(db: Session) -> None:
    seed_defaults(db)
    agent = make_user(db)
    handed = make_ticket(db, subject="Hello", body="Something odd happened with the thing today.")
    auto = make_ticket(db, subject="Refund", body="Please refund me, money back")
    tickets.update_ticket(db, staff_actor(agent), handed, {"category": "bug"})
    tickets.update_ticket(db, staff_actor(agent), auto, {"category": "billing/dispute"})
    assert handed.tags == []
    assert _prediction(db, handed).corrected_category == "bug"
    assert _prediction(db, auto).corrected_category == "billing/dispute"
    assert _prediction(db, auto).corrected_by_id == agent.id
    examples = {
        (example.ticket_id, example.category, example.source) for example in registry.training_examples(db)
    }
    assert examples == {(handed.id, "bug", "set_by_person"), (auto.id, "billing/dispute", "corrected")}
    report = accuracy_report(db, SYSTEM)
    assert (report.classified, report.auto, report.handoff, report.overridden) == (2, 1, 1, 1)
    assert report.override_rate == 1.0
    assert report.handoff_rate == 0.5
    refund = next(item for item in report.categories if item.category == "billing/refund")
    assert (refund.predicted, refund.correct, refund.precision) == (1, 0, 0.0)


def _label_history(db: Session, per_category: int) -> int:
    """Tickets an agent categorized by hand (those the rules got right are not training data)."""
    agent = staff_actor(make_user(db))
    labelled = 0
    for text, category in labelled_texts(per_category):
        ticket = make_ticket(db, subject=text[:60], body=text)
        if ticket.category != category:
            tickets.update_ticket(db, agent, ticket, {"category": category})
            labelled += 1
    return labelled


def test_training_from_history_activates_a_model_that_beats_the_rules(db: Session) -> None:
    seed_defaults(db)
    labelled = _label_history(db, 8)
    assert 15 <= labelled < 24  # the keyword rules recognise some single sign-on tickets
    admin = staff_actor(make_user(db, role="admin"))
    # eight right answers out of eight show a cautious precision of 0.89: enough for 0.85, not 0.95
    update_triage_settings(db, admin, target_precision=0.85)
    model = registry.train_model(db, admin)
    assert (model.version, model.is_active, model.n_train) == (1, True, labelled)
    assert model.accuracy > model.baseline_accuracy
    assert set(model.thresholds) == {"account/sso", "billing/refund", "how_to"}
    assert model.metrics["per_category"]["how_to"]["support"] == 8  # no how-to rule matched these
    ticket = make_ticket(db, subject="Menus", body="Which menu lets me rename a customer view")
    prediction = _prediction(db, ticket)
    assert (prediction.source, prediction.model_version, prediction.category) == ("tfidf_linear", 1, "how_to")
    assert ticket.category == "how_to"
    assert "menu" in [word for word, _ in prediction.top_words]

    second = registry.train_model(db, admin)
    assert (second.version, second.is_active) == (2, True)
    db.refresh(model)
    assert not model.is_active
    assert registry.rollback(db, admin) is not None
    assert registry.active_model_row(db) == model
    assert registry.rollback(db, admin) is None  # back to the keyword rules
    assert registry.active_model_row(db) is None
    with pytest.raises(RollbackRefusedError):
        registry.rollback(db, admin)
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.entity_type == "triage_model").order_by(AuditEvent.id)
    ).all()
    assert actions == ["trained", "activated", "trained", "activated", "activated", "deactivated"]


def test_stricter_target_precision_retunes_the_active_thresholds(db: Session) -> None:
    seed_defaults(db)
    _label_history(db, 8)
    admin = staff_actor(make_user(db, role="admin"))
    model = registry.train_model(db, admin)
    before = dict(model.thresholds)
    assert all(value > 1 for value in before.values())  # 0.95 is out of reach with 8 examples each
    update_triage_settings(db, admin, target_precision=0.6)
    db.refresh(model)
    loose = dict(model.thresholds)
    assert all(loose[name] <= 1 for name in before)
    update_triage_settings(db, admin, target_precision=0.99)
    db.refresh(model)
    assert triage_settings(db).target_precision == 0.99
    assert model.target_precision == 0.99
    assert all(model.thresholds[name] >= loose[name] for name in before)


def test_training_without_enough_labels_is_refused_and_stores_nothing(db: Session) -> None:
    seed_defaults(db)
    admin = staff_actor(make_user(db, role="admin"))
    with pytest.raises(NotEnoughTrainingDataError):
        registry.train_model(db, admin)
    assert db.scalar(select(func.count()).select_from(TriageModel)) == 0


def test_training_is_queued_once_for_the_job_runner(db: Session) -> None:
    seed_defaults(db)
    admin = staff_actor(make_user(db, role="admin"))
    first = registry.request_training(db, admin)
    again = registry.request_training(db, admin)
    assert first.id == again.id
    assert (first.kind, first.payload["kind"]) == ("triage.train", "tfidf_linear")
    assert db.scalar(select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == "triage.train")) == 1
