"""The classifier pipeline on small generated data: training, held-out figures, thresholds,
explanations, out-of-scope texts and storage."""

from __future__ import annotations

import pytest

from opsdesk.triage.classifier import TrainedClassifier, TrainingDataError, train_classifier
from tests.triage.generated import labelled_texts


@pytest.fixture(scope="module")
def trained() -> TrainedClassifier:
    rows = labelled_texts(12)
    return train_classifier([text for text, _ in rows], [label for _, label in rows], target_precision=0.9)


def test_training_reports_held_out_figures_per_category(trained: TrainedClassifier) -> None:
    report = trained.report
    assert report.n_train == 36
    assert report.folds == 5
    assert trained.classes == ["account/sso", "billing/refund", "how_to"]
    assert report.accuracy == 1.0
    assert set(report.per_category) == set(trained.classes)
    assert all(metrics.support == 12 for metrics in report.per_category.values())
    assert all(0 < metrics.threshold <= 1.0 for metrics in report.per_category.values())
    assert report.as_dict()["per_category"]["how_to"]["recall"] == 1.0


def test_prediction_carries_confidence_threshold_and_top_words(trained: TrainedClassifier) -> None:
    prediction = trained.predict("Please return the $40.00 you took for order A1234")
    assert prediction.category == "billing/refund"
    assert prediction.is_confident
    assert prediction.confidence >= prediction.threshold
    words = [word for word, _ in prediction.top_words]
    assert "order" in words
    assert "00" not in words
    assert all(weight > 0 for _, weight in prediction.top_words)


def test_unknown_text_is_out_of_scope(trained: TrainedClassifier) -> None:
    prediction = trained.predict("zzz qqq")
    assert prediction.out_of_scope
    assert not prediction.is_confident


def test_stricter_target_raises_thresholds_without_retraining(trained: TrainedClassifier) -> None:
    loose = trained.thresholds_for(0.5)
    strict = trained.thresholds_for(0.99)
    assert all(strict[name] >= loose[name] for name in trained.classes)
    assert any(strict[name] > loose[name] for name in trained.classes)


def test_round_trip_through_bytes_predicts_the_same(trained: TrainedClassifier) -> None:
    copy = TrainedClassifier.from_bytes(trained.to_bytes())
    text = "Which menu lets me rename a backlog view"
    assert copy.predict(text) == trained.predict(text)
    assert copy.predict_many([text, "zzz"])[0] == trained.predict(text)
    with pytest.raises(Exception):  # noqa: B017, PT011 - any failure to read is fine, silence is not
        TrainedClassifier.from_bytes(b"not a model")


def test_too_little_data_is_refused() -> None:
    with pytest.raises(TrainingDataError, match="at least two categories"):
        train_classifier(["a b", "c d", "e f"], ["x", "x", "x"])
    with pytest.raises(TrainingDataError, match="at least 3 examples: y"):
        train_classifier(["a b", "c d", "e f", "g h"], ["x", "x", "x", "y"])
