"""The heavier triage model (``kind="embeddings"``): a cascade of the fast model and a sentence
encoder, trained by one pipeline and stored as one version.

Prediction, per ticket:

1. the fast model (TF-IDF + linear SVM, :mod:`opsdesk.triage.classifier`) scores the text; when
   its calibrated confidence reaches the **gate**, its answer stands (most tickets: a fraction of
   a millisecond);
2. otherwise the sentence encoder embeds the text and a second linear model scores the
   embedding; the category is the best of ``fast scores + weight x embedding scores`` through a
   second fitted temperature (a few milliseconds: only the uncertain tickets pay for it).

Either way the words that explain the answer are the fast model's top words for the chosen
category (they are part of the combined score too), and the hand-off threshold is the category's
threshold of the cascade as a whole.

Training (:func:`train_cascade`) fits the fast model once (its folds and held-out scores are
reused, nothing is fitted twice), encodes the training texts once, fits the embedding model on
the same folds so every example has held-out scores of both parts, then chooses on those held-out
scores, never on test data:

- the weight of the embedding scores (best held-out accuracy of the combination);
- the gate: the lowest fast-model confidence at which the cascade's held-out accuracy is within
  ``GATE_TOLERANCE`` of the best gate's (so the encoder runs as rarely as accuracy allows);
- the per-category hand-off thresholds, precision and recall of the cascade's held-out answers.

Pure: no I/O, no SQLAlchemy; the encoder is any :data:`~opsdesk.triage.classifier.Encoder`
(see :mod:`opsdesk.triage.embeddings` for the plug-in point and the MiniLM one).
"""

from __future__ import annotations

import pickle
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.svm import LinearSVC

from opsdesk.triage.classifier import (
    FIT_THREADS,
    Encoder,
    FloatArray,
    ModelPrediction,
    TrainedClassifier,
    TrainingReport,
    check_examples,
    fit_fast,
    fit_temperature,
    softmax,
    summarize_holdout,
    thresholds_from_holdout,
)
from opsdesk.triage.enums import ModelKind

FORMAT = "opsdesk-cascade-1"
LEGACY_ENCODER = "all-MiniLM-L6-v2"  # what embeddings models stored before the cascade used
EMBEDDING_C = 1.0
WEIGHTS = (0.5, 1.0, 1.5, 2.0)
GATE_TOLERANCE = 0.001  # held-out accuracy the gate may give up to spare encoder calls


@dataclass(slots=True)
class CascadeClassifier:
    kind: str
    classes: list[str]
    fast: TrainedClassifier
    encoder_name: str
    embedding_coefficients: npt.NDArray[np.float32]  # dimensions x classes
    embedding_intercepts: FloatArray
    weight: float
    temperature: float
    gate: float
    thresholds: dict[str, float]
    report: TrainingReport
    holdout_predicted: npt.NDArray[np.int64]
    holdout_confidence: FloatArray
    holdout_correct: npt.NDArray[np.bool_]
    encoder: Encoder | None = field(default=None, repr=False)

    def thresholds_for(self, target_precision: float) -> dict[str, float]:
        """Per-category thresholds for another target precision (no retraining)."""
        return thresholds_from_holdout(
            self.classes,
            self.holdout_predicted,
            self.holdout_confidence,
            self.holdout_correct,
            target_precision,
        )

    def fast_thresholds_for(self, target_precision: float) -> dict[str, float]:
        """The fast model's own thresholds: what it hands off when it answers alone."""
        return self.fast.thresholds_for(target_precision)

    def predict(
        self, text: str, *, top_words: int = 5, thresholds: dict[str, float] | None = None
    ) -> ModelPrediction:
        return self.predict_many([text], top_words=top_words, thresholds=thresholds)[0]

    def predict_many(
        self, texts: Sequence[str], *, top_words: int = 5, thresholds: dict[str, float] | None = None
    ) -> list[ModelPrediction]:
        if self.encoder is None:
            raise RuntimeError(
                f"this model needs the sentence encoder {self.encoder_name!r} (install opsdesk[embeddings])"
            )
        fast = self.fast
        matrix = fast.features.transform(texts)
        fast_scores = fast.scores(matrix)
        probabilities = softmax(fast_scores, fast.temperature)
        # out-of-scope texts are handed off whatever the encoder says: spare it
        in_scope = fast.in_scope(texts, matrix)
        unsure = np.flatnonzero((probabilities.max(axis=1) < self.gate) & in_scope)
        stages = ["fast"] * len(texts)
        if len(unsure):
            embeddings = np.asarray(self.encoder([texts[int(i)] for i in unsure]), dtype=np.float64)
            combined = fast_scores[unsure] + self.weight * self._embedding_scores(embeddings)
            probabilities[unsure] = softmax(combined, self.temperature)
            for index in unsure:
                stages[int(index)] = "encoder"
        return fast.predictions_from(
            texts,
            matrix,
            probabilities,
            thresholds=self.thresholds if thresholds is None else thresholds,
            top_words=top_words,
            stages=stages,
            in_scope=in_scope,
        )

    def _embedding_scores(self, embeddings: FloatArray) -> FloatArray:
        scores = embeddings.astype(np.float32) @ self.embedding_coefficients
        result: FloatArray = scores.astype(np.float64) + self.embedding_intercepts
        return result

    # ------------------------------------------------------------ storage

    def to_bytes(self) -> bytes:
        encoder, self.encoder = self.encoder, None
        try:
            payload = pickle.dumps((FORMAT, self), protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            self.encoder = encoder
        return zlib.compress(payload, level=6)

    @classmethod
    def from_payload(cls, payload: Any, encoder: Encoder | None) -> CascadeClassifier:
        tag, model = payload
        if tag != FORMAT or not isinstance(model, cls):
            raise ValueError("not an opsdesk cascade model of this version")
        model.encoder = encoder
        return model


def _fit_embedding_model(
    embeddings: FloatArray, labels: npt.NDArray[np.str_], n_classes: int
) -> tuple[FloatArray, FloatArray]:
    model = LinearSVC(C=EMBEDDING_C, random_state=0)
    model.fit(embeddings, labels)
    coefficients = np.asarray(model.coef_, dtype=np.float64)
    intercepts = np.asarray(model.intercept_, dtype=np.float64)
    if n_classes == 2:  # one column for the second class: make it two
        coefficients = np.vstack([-coefficients, coefficients])
        intercepts = np.concatenate([-intercepts, intercepts])
    return coefficients, intercepts


def choose_gate(
    fast_confidence: FloatArray,
    fast_correct: npt.NDArray[np.bool_],
    combined_correct: npt.NDArray[np.bool_],
    tolerance: float = GATE_TOLERANCE,
) -> float:
    """The lowest fast-model confidence at which answering with the fast model from it on (and
    with the combination under it) is within ``tolerance`` of the best such gate's accuracy.
    Above every confidence (1.01) means: always consult the encoder."""
    candidates = np.unique(np.floor(fast_confidence * 1000) / 1000)  # never above a confidence
    candidates = np.append(candidates, 1.01)
    n = len(fast_confidence)
    accuracies = np.array(
        [
            (
                int(fast_correct[fast_confidence >= gate].sum())
                + int(combined_correct[fast_confidence < gate].sum())
            )
            / n
            for gate in candidates
        ]
    )
    good_enough = accuracies >= accuracies.max() - tolerance
    return float(candidates[int(np.argmax(good_enough))])  # candidates ascend: the lowest


def train_cascade(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    encoder: Encoder,
    encoder_name: str,
    target_precision: float = 0.95,
    folds: int | None = None,
) -> CascadeClassifier:
    """Train the cascade (see the module docstring)."""
    started = time.perf_counter()
    check_examples(texts, labels)  # refuse bad data before the encoder starts
    text_list = list(texts)
    # The encoder (torch, one thread per call, GIL released) and the fast model's vectorizing
    # and fits run side by side: two cores, one training.
    with ThreadPoolExecutor(max_workers=1) as encoding:
        encoded = encoding.submit(encoder, text_list)
        fit = fit_fast(text_list, labels, target_precision=target_precision, folds=folds)
        embeddings = np.asarray(encoded.result(), dtype=np.float64)
    if embeddings.shape[0] != len(text_list) or embeddings.ndim != 2:
        raise ValueError("the encoder must answer one vector per text")
    fast = fit.model
    classes = fast.classes
    label_array = np.asarray(labels)
    truth = fit.truth_index
    held_out_embedding = np.zeros_like(fit.held_out_scores)
    with ThreadPoolExecutor(max_workers=FIT_THREADS) as pool:
        final_future = pool.submit(_fit_embedding_model, embeddings, label_array, len(classes))
        fold_futures = [
            (
                test_index,
                pool.submit(
                    _fit_embedding_model, embeddings[train_index], label_array[train_index], len(classes)
                ),
            )
            for train_index, test_index in fit.folds
        ]
        for test_index, future in fold_futures:
            coefficients, intercepts = future.result()
            held_out_embedding[test_index] = embeddings[test_index] @ coefficients.T + intercepts
        final_coefficients, final_intercepts = final_future.result()
    fast_held_out = fit.held_out_scores
    weight = max(
        WEIGHTS,
        key=lambda w: float(np.mean((fast_held_out + w * held_out_embedding).argmax(axis=1) == truth)),
    )
    combined_scores = fast_held_out + weight * held_out_embedding
    temperature = fit_temperature(combined_scores, truth)
    combined = softmax(combined_scores, temperature)
    fast_probabilities = softmax(fast_held_out, fast.temperature)
    fast_confidence = fast_probabilities.max(axis=1)
    fast_predicted = fast_probabilities.argmax(axis=1)
    combined_predicted = combined.argmax(axis=1)
    gate = choose_gate(fast_confidence, fast_predicted == truth, combined_predicted == truth)
    by_fast = fast_confidence >= gate
    predicted = np.where(by_fast, fast_predicted, combined_predicted).astype(np.int64)
    confidence = np.where(by_fast, fast_confidence, combined.max(axis=1))
    summary = summarize_holdout(classes, truth, predicted, confidence, target_precision)
    report = TrainingReport(
        kind=ModelKind.EMBEDDINGS.value,
        n_train=len(text_list),
        folds=fast.report.folds,
        accuracy=summary.accuracy,
        macro_f1=summary.macro_f1,
        target_precision=target_precision,
        temperature=temperature,
        train_seconds=round(time.perf_counter() - started, 2),
        per_category=summary.per_category,
        holdout_handoff_rate=summary.handoff_rate,
        holdout_accuracy_when_auto=summary.accuracy_when_auto,
        details={
            "cascade": {
                "encoder": encoder_name,
                "gate": round(gate, 4),
                "embedding_weight": weight,
                "holdout_fast_share": round(float(by_fast.mean()), 4),
                "holdout_fast_accuracy": fast.report.accuracy,
                "holdout_combined_accuracy": round(float(np.mean(combined_predicted == truth)), 4),
                "fast_temperature": fast.temperature,
            }
        },
    )
    return CascadeClassifier(
        kind=ModelKind.EMBEDDINGS.value,
        classes=classes,
        fast=fast,
        encoder_name=encoder_name,
        embedding_coefficients=np.ascontiguousarray(final_coefficients.T.astype(np.float32)),
        embedding_intercepts=final_intercepts,
        weight=weight,
        temperature=temperature,
        gate=gate,
        thresholds=summary.thresholds,
        report=report,
        holdout_predicted=predicted,
        holdout_confidence=confidence,
        holdout_correct=predicted == truth,
        encoder=encoder,
    )


def model_from_bytes(
    blob: bytes, encoder_for: Callable[[str], Encoder | None]
) -> TrainedClassifier | CascadeClassifier:
    """A stored model of either kind; ``encoder_for(name)`` gives the encoder it was trained
    with (``None`` when not installed: a cascade then cannot predict; its ``fast`` model can)."""
    # The blob was written by to_bytes() into our own database, never supplied by a user.
    payload = pickle.loads(zlib.decompress(blob))  # noqa: S301
    if isinstance(payload, tuple) and len(payload) == 2 and payload[0] == FORMAT:
        return CascadeClassifier.from_payload(payload, encoder_for(payload[1].encoder_name))
    model = TrainedClassifier.from_payload(payload)
    if model.features.use_embeddings:  # stored before the cascade: MiniLM fp32 appended to TF-IDF
        model.features.encoder = encoder_for(LEGACY_ENCODER)
    return model
