"""The cascade (fast model, then a sentence encoder for the texts it is unsure of), with a small
deterministic stand-in encoder plugged in through :func:`opsdesk.triage.embeddings.register_encoder`:
the MiniLM encoder is an install extra that CI does not install."""

from __future__ import annotations

import dataclasses
import random
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.tickets import service as tickets
from opsdesk.triage.cascade import (
    LEGACY_ENCODER,
    CascadeClassifier,
    choose_gate,
    model_from_bytes,
    train_cascade,
)
from opsdesk.triage.classifier import TrainedClassifier, TrainingDataError
from opsdesk.triage.embeddings import DEFAULT_ENCODER, load_encoder, register_encoder, unregister_encoder
from opsdesk.triage.models import TriagePrediction
from opsdesk.triage.seed import seed_defaults
from opsdesk.triage.service import registry
from tests.support.factories import make_ticket, make_user, staff_actor
from tests.triage.generated import labelled_texts

ENCODER = "test-concepts"
CONCEPTS = {
    "refund": 0, "reimburse": 0, "repay": 0, "chargeback": 0,
    "login": 1, "signin": 1, "password": 1, "okta": 1,
}  # fmt: skip


class ConceptEncoder:
    """A stand-in sentence encoder: words it knows land on their concept's dimension (synonyms
    share one, as in a real sentence embedding), other words on hashed dimensions. Deterministic;
    counts the texts it was asked to encode."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def __call__(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        self.encoded.extend(texts)
        vectors = np.zeros((len(texts), 12))
        for row, text in enumerate(texts):
            for word in text.lower().split():
                concept = CONCEPTS.get(word)
                if concept is not None:
                    vectors[row, concept] += 3.0
                else:
                    vectors[row, 2 + zlib.crc32(word.encode()) % 10] += 1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)


@pytest.fixture
def concept_encoder() -> Iterator[ConceptEncoder]:
    encoder = ConceptEncoder()
    register_encoder(ENCODER, lambda: encoder)
    yield encoder
    unregister_encoder(ENCODER)
    # Loaded models are cached per process by (version, artifact digest), and a test that runs
    # again on the other database trains the same bytes as version 1: it must not be handed a
    # model this test loaded (perhaps while the encoder was missing).
    registry._cache.clear()


FILLER = ("please", "help", "today", "with", "my", "the", "issue", "team", "asap", "again", "now", "thanks")


def _synonym_texts(words: Sequence[str], count: int, seed: int) -> list[str]:
    generator = random.Random(seed)
    return [
        " ".join([*generator.sample(FILLER, 4), words[index % len(words)], *generator.sample(FILLER, 2)])
        for index in range(count)
    ]


def test_gate_is_the_lowest_confidence_that_gives_up_no_accuracy() -> None:
    confidence = np.array([0.2, 0.4, 0.6, 0.8, 0.95])
    fast_correct = np.array([False, False, True, True, True])
    combined_correct = np.array([True, False, True, True, False])
    # answering fast from 0.4 on is as good as from 0.8 (4 of 5), and spares more encoder calls
    assert choose_gate(confidence, fast_correct, combined_correct, tolerance=0.0) == 0.4
    # giving up one answer in five is allowed: the fast model may answer everything
    assert choose_gate(confidence, fast_correct, combined_correct, tolerance=0.25) == 0.2
    # the fast model never right, the combination always: always ask the encoder
    assert choose_gate(confidence, np.zeros(5, dtype=bool), np.ones(5, dtype=bool)) == 1.01


def test_confident_texts_never_reach_the_encoder(concept_encoder: ConceptEncoder) -> None:
    rows = labelled_texts(12)
    model = train_cascade(
        [text for text, _ in rows],
        [label for _, label in rows],
        encoder=concept_encoder,
        encoder_name=ENCODER,
        target_precision=0.9,
    )
    assert len(concept_encoder.encoded) == 36  # the training texts, once
    concept_encoder.encoded.clear()
    clear = model.predict("Please return the $40.00 you took for order A1234")
    assert (clear.category, clear.stage) == ("billing/refund", "fast")
    assert clear.confidence >= model.gate
    assert concept_encoder.encoded == []
    # with the gate above every confidence the encoder is asked, and the answer still carries
    # the cascade's threshold and the words behind it
    always_ask = dataclasses.replace(model, gate=1.01)
    asked = always_ask.predict("Please return the $40.00 you took for order A1234")
    assert asked.stage == "encoder"
    assert concept_encoder.encoded == ["Please return the $40.00 you took for order A1234"]
    assert asked.category == "billing/refund"
    assert asked.threshold == model.thresholds["billing/refund"]
    assert "order" in [word for word, _ in asked.top_words]
    # a text sharing no word with the training data is handed off without encoding it
    outside = always_ask.predict("zzz qqq")
    assert outside.out_of_scope
    assert not outside.is_confident
    assert len(concept_encoder.encoded) == 1


def test_the_encoder_answers_what_the_fast_model_cannot_tell_apart(concept_encoder: ConceptEncoder) -> None:
    train_texts = _synonym_texts(["refund", "reimburse"], 30, seed=1) + _synonym_texts(
        ["login", "signin"], 30, seed=2
    )
    train_labels = ["billing/refund"] * 30 + ["account/sso"] * 30
    model = train_cascade(
        train_texts, train_labels, encoder=concept_encoder, encoder_name=ENCODER, target_precision=0.9
    )
    details = model.report.as_dict()["cascade"]
    assert details["encoder"] == ENCODER
    assert details["embedding_weight"] in (0.5, 1.0, 1.5, 2.0)
    # synonyms the fast model never saw: only filler words are left for it
    test_texts = _synonym_texts(["repay", "chargeback"], 10, seed=3) + _synonym_texts(
        ["password", "okta"], 10, seed=4
    )
    truth = ["billing/refund"] * 10 + ["account/sso"] * 10
    fast_alone = [p.category for p in model.fast.predict_many(test_texts)]
    cascade = model.predict_many(test_texts)
    assert sum(a == b for a, b in zip(fast_alone, truth, strict=True)) <= 15
    assert [p.category for p in cascade] == truth
    assert {p.stage for p in cascade} == {"encoder"}
    assert all(p.confidence > 0.5 for p in cascade)


def test_storage_keeps_the_encoder_name_and_needs_that_encoder(concept_encoder: ConceptEncoder) -> None:
    rows = labelled_texts(10)
    texts = [text for text, _ in rows]
    model = train_cascade(
        texts, [label for _, label in rows], encoder=concept_encoder, encoder_name=ENCODER, folds=3
    )
    assert model.report.kind == "embeddings"
    assert set(model.report.per_category) == set(model.classes)
    restored = model_from_bytes(model.to_bytes(), load_encoder)
    assert isinstance(restored, CascadeClassifier)
    assert restored.encoder_name == ENCODER
    assert restored.predict_many(texts[:5]) == model.predict_many(texts[:5])
    assert restored.thresholds_for(model.report.target_precision) == model.thresholds
    without = model_from_bytes(model.to_bytes(), lambda name: None)
    assert isinstance(without, CascadeClassifier)
    with pytest.raises(RuntimeError, match=r"opsdesk\[embeddings\]"):
        without.predict(texts[0])
    assert without.fast.predict(texts[0]).category == model.fast.predict(texts[0]).category
    fast = model_from_bytes(model.fast.to_bytes(), load_encoder)
    assert isinstance(fast, TrainedClassifier)
    with pytest.raises(TrainingDataError, match="at least two categories"):
        train_cascade(["a b", "c d", "e f"], ["x", "x", "x"], encoder=concept_encoder, encoder_name=ENCODER)


def test_embeddings_training_stores_a_cascade_and_its_fast_model_stands_in_without_the_encoder(
    db: Session, concept_encoder: ConceptEncoder
) -> None:
    seed_defaults(db)
    agent = staff_actor(make_user(db))
    admin = staff_actor(make_user(db, role="admin"))
    for text, category in labelled_texts(9):
        tickets.update_ticket(
            db, agent, make_ticket(db, subject=text[:50], body=text), {"category": category}
        )
    row = registry.train_model(db, admin, kind="embeddings", encoder=ENCODER)
    assert (row.kind, row.is_active, row.notes) == ("embeddings", True, "")
    assert row.metrics["cascade"]["encoder"] == ENCODER
    assert set(row.metrics["per_category"]) == {"account/sso", "billing/refund", "how_to"}
    active = registry.active_model(db)
    assert active is not None
    assert active.kind == "embeddings"
    ticket = make_ticket(
        db, subject="Refund please", body="Please return the $12.00 you took for order A5555"
    )
    # classified as it was created (TicketCreated -> triage.classify)
    prediction = db.scalars(select(TriagePrediction).where(TriagePrediction.ticket_id == ticket.id)).one()
    assert (prediction.source, prediction.category) == ("embeddings", "billing/refund")
    assert prediction.top_words

    # the encoder is gone (the extra uninstalled): the cascade's fast model answers alone
    unregister_encoder(ENCODER)
    registry._cache.clear()
    fallback = registry.active_model(db)
    assert fallback is not None
    assert (fallback.version, fallback.kind) == (row.version, "tfidf_linear")
    assert isinstance(fallback.classifier, TrainedClassifier)
    assert fallback.thresholds == fallback.classifier.thresholds_for(row.target_precision)
    # training the embeddings kind without its encoder trains the fast model and says so
    again = registry.train_model(db, admin, kind="embeddings", encoder=ENCODER)
    assert again.kind == "tfidf_linear"
    assert f"sentence encoder '{ENCODER}' not installed" in again.notes


def test_the_cascade_is_what_training_defaults_to_where_its_encoder_is_installed(
    db: Session, concept_encoder: ConceptEncoder
) -> None:
    seed_defaults(db)
    admin = staff_actor(make_user(db, role="admin"))
    register_encoder(DEFAULT_ENCODER, lambda: concept_encoder)  # stands in for MiniLM
    try:
        assert registry.default_kind() == "embeddings"
        job = registry.request_training(db, admin)
        assert job.payload["kind"] == "embeddings"
    finally:
        unregister_encoder(DEFAULT_ENCODER)


def test_embeddings_models_stored_before_the_cascade_still_load_with_their_encoder(
    concept_encoder: ConceptEncoder,
) -> None:
    rows = labelled_texts(10)
    texts = [text for text, _ in rows]
    fast = train_cascade(
        texts, [label for _, label in rows], encoder=concept_encoder, encoder_name=ENCODER, folds=3
    ).fast
    # the earlier layout: embeddings appended (weight 2) to the TF-IDF features of one linear model
    legacy = dataclasses.replace(
        fast,
        kind="embeddings",
        features=dataclasses.replace(fast.features, use_embeddings=True),
        coefficients=np.vstack([fast.coefficients, np.ones((12, len(fast.classes)), dtype=np.float32)]),
    )
    asked: list[str] = []
    restored = model_from_bytes(legacy.to_bytes(), lambda name: asked.append(name) or concept_encoder)
    assert asked == [LEGACY_ENCODER]
    assert isinstance(restored, TrainedClassifier)
    # equal weights on every class for the embedding columns: the same category and confidence
    assert restored.predict(texts[0]).category == fast.predict(texts[0]).category
    assert restored.predict(texts[0]).confidence == pytest.approx(fast.predict(texts[0]).confidence, abs=1e-6)
    assert restored.thresholds_for(0.9) == fast.thresholds_for(0.9)
    orphan = model_from_bytes(legacy.to_bytes(), lambda name: None)
    with pytest.raises(RuntimeError, match=r"opsdesk\[embeddings\]"):
        orphan.predict(texts[0])
