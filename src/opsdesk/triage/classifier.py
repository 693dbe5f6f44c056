"""The ticket classifier: TF-IDF word and character n-grams with a linear model, calibrated
confidences, per-category hand-off thresholds and the words behind each prediction.

Training (:func:`train_classifier`) is the one pipeline used by production, ``opsdesk triage
train`` and ``opsdesk bench triage``:

1. k-fold cross-validation on the training examples gives held-out scores for every example
   (5 folds, or 3 from 5,000 examples on);
2. a softmax temperature is fitted on those scores (minimum log-loss), so confidence means
   probability;
3. per category, the hand-off threshold is the lowest confidence at which the held-out
   predictions of that category reach the target precision with margin (the one-sided Wilson
   lower bound of their precision, z=1, must reach the target), so a category with few examples
   needs more evidence; a category that never gets there hands everything off;
4. held-out accuracy, macro F1 and per-category precision/recall come from the same folds;
5. the final model is fitted on all examples (the fold fits and the final fit run two at a time:
   liblinear releases the GIL).

The heavier model (``kind="embeddings"``, install extra ``opsdesk[embeddings]``) is a cascade built
on this one: see :mod:`opsdesk.triage.cascade`. Models of that kind stored before the cascade
(sentence embeddings appended to the TF-IDF features of one linear model) still load and predict
here (``_Features.use_embeddings``).

Pure: no I/O, no SQLAlchemy. A model serializes to bytes (:meth:`TrainedClassifier.to_bytes`)
that only opsdesk writes (models are loaded from our own database, never from users).
"""

from __future__ import annotations

import math
import pickle
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from opsdesk.triage.enums import ModelKind

FloatArray = npt.NDArray[np.float64]
Encoder = Callable[[Sequence[str]], FloatArray]

FORMAT_VERSION = 1
MIN_EXAMPLES_PER_CATEGORY = 3
WILSON_Z = 1.0
TEMPERATURES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0)
EMBEDDING_WEIGHT = 2.0
FIT_THREADS = 2
LARGE_DATASET = 5000
_WORD_PATTERN = r"(?u)\b\w+\b"


@dataclass(frozen=True, slots=True)
class CategoryMetrics:
    precision: float
    recall: float
    support: int
    threshold: float


@dataclass(frozen=True, slots=True)
class TrainingReport:
    kind: str
    n_train: int
    folds: int
    accuracy: float
    macro_f1: float
    target_precision: float
    temperature: float
    train_seconds: float
    per_category: dict[str, CategoryMetrics]
    holdout_handoff_rate: float
    holdout_accuracy_when_auto: float
    details: dict[str, Any] = field(default_factory=dict)  # kind-specific (the cascade's gate, ...)

    def as_dict(self) -> dict[str, Any]:
        return {
            # reports unpickled from models stored before ``details`` existed lack the slot
            **(getattr(self, "details", None) or {}),
            "kind": self.kind,
            "n_train": self.n_train,
            "folds": self.folds,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "target_precision": self.target_precision,
            "temperature": self.temperature,
            "train_seconds": self.train_seconds,
            "holdout_handoff_rate": self.holdout_handoff_rate,
            "holdout_accuracy_when_auto": self.holdout_accuracy_when_auto,
            "per_category": {
                name: {
                    "precision": metrics.precision,
                    "recall": metrics.recall,
                    "support": metrics.support,
                    "threshold": metrics.threshold,
                }
                for name, metrics in self.per_category.items()
            },
        }


@dataclass(frozen=True, slots=True)
class ModelPrediction:
    category: str | None
    confidence: float
    threshold: float
    top_words: tuple[tuple[str, float], ...]
    out_of_scope: bool
    # which part of the model answered: "fast" (TF-IDF + linear) or "encoder" (the cascade
    # consulted the sentence encoder because the fast model was unsure)
    stage: str = "fast"

    @property
    def is_confident(self) -> bool:
        return not self.out_of_scope and self.category is not None and self.confidence >= self.threshold


class TrainingDataError(ValueError):
    """The examples cannot train a model (too few, or too few categories)."""


@dataclass(slots=True)
class _Features:
    """Word and character TF-IDF (and optionally sentence embeddings) of texts."""

    words: TfidfVectorizer
    chars: TfidfVectorizer
    use_embeddings: bool
    encoder: Encoder | None = field(default=None, repr=False)

    @classmethod
    def new(cls, use_embeddings: bool, encoder: Encoder | None) -> _Features:
        return cls(
            words=TfidfVectorizer(
                ngram_range=(1, 3), sublinear_tf=True, token_pattern=_WORD_PATTERN, min_df=1
            ),
            chars=TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
            use_embeddings=use_embeddings,
            encoder=encoder,
        )

    def fit(self, texts: Sequence[str], embeddings: FloatArray | None) -> sparse.csr_matrix:
        word_matrix = self.words.fit_transform(texts)
        char_matrix = self.chars.fit_transform(texts)
        return self._stack(word_matrix, char_matrix, embeddings)

    def transform(self, texts: Sequence[str], embeddings: FloatArray | None = None) -> sparse.csr_matrix:
        if len(texts) == 1:
            single = self.transform_one(texts[0])
            if not self.use_embeddings:
                return single
            vector = self.encode(texts) if embeddings is None else embeddings
            return sparse.hstack([single, sparse.csr_matrix(vector * EMBEDDING_WEIGHT)], format="csr")
        word_matrix = self.words.transform(texts)
        char_matrix = self.chars.transform(texts)
        if self.use_embeddings and embeddings is None:
            embeddings = self.encode(texts)
        return self._stack(word_matrix, char_matrix, embeddings)

    def transform_one(self, text: str) -> sparse.csr_matrix:
        """The same vector as :meth:`transform` for one text, without scikit-learn's per-call
        validation overhead (milliseconds), which dominates the cost of a single ticket."""
        word_indices, word_values = _tfidf_row(self.words, text, 0)
        char_indices, char_values = _tfidf_row(self.chars, text, self.word_count)
        indices = np.concatenate([word_indices, char_indices]).astype(np.int32)
        values = np.concatenate([word_values, char_values])
        width = self.word_count + len(self.chars.vocabulary_)
        return sparse.csr_matrix(
            (values, indices, np.array([0, len(indices)], dtype=np.int32)), shape=(1, width)
        )

    def encode(self, texts: Sequence[str]) -> FloatArray:
        if self.encoder is None:
            raise RuntimeError("this model needs the sentence encoder (install opsdesk[embeddings])")
        return self.encoder(texts)

    def _stack(self, word_matrix: Any, char_matrix: Any, embeddings: FloatArray | None) -> sparse.csr_matrix:
        blocks = [word_matrix, char_matrix]
        if self.use_embeddings and embeddings is not None:
            blocks.append(sparse.csr_matrix(embeddings * EMBEDDING_WEIGHT))
        return sparse.hstack(blocks, format="csr")

    @property
    def word_count(self) -> int:
        return len(self.words.vocabulary_)


_ANALYZERS: dict[int, tuple[TfidfVectorizer, Callable[[str], list[str]]]] = {}


def _tfidf_row(
    vectorizer: TfidfVectorizer, text: str, offset: int
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Sublinear TF-IDF with l2 norm of one text, as ``vectorizer.transform`` computes it."""
    cached = _ANALYZERS.get(id(vectorizer))
    if cached is None or cached[0] is not vectorizer:
        cached = (vectorizer, vectorizer.build_analyzer())
        _ANALYZERS[id(vectorizer)] = cached
    vocabulary: dict[str, int] = vectorizer.vocabulary_
    counts: dict[int, int] = {}
    for term in cached[1](text):
        index = vocabulary.get(term)
        if index is not None:
            counts[index] = counts.get(index, 0) + 1
    if not counts:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    order = np.argsort(indices)
    indices = indices[order]
    frequencies = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))[order]
    values = (1.0 + np.log(frequencies)) * vectorizer.idf_[indices]
    norm = float(np.sqrt(np.dot(values, values)))
    if norm > 0:
        values /= norm
    return indices + offset, values


def softmax(scores: FloatArray, temperature: float) -> FloatArray:
    scaled = scores * temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exponentials = np.exp(scaled)
    result: FloatArray = exponentials / exponentials.sum(axis=1, keepdims=True)
    return result


def wilson_lower_bound(correct: int, total: int, z: float = WILSON_Z) -> float:
    """A cautious estimate of a precision measured on ``total`` predictions."""
    if total == 0:
        return 0.0
    share = correct / total
    denominator = 1 + z * z / total
    centre = share + z * z / (2 * total)
    spread = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total))
    return (centre - spread) / denominator


def choose_threshold(confidences: FloatArray, correct: npt.NDArray[np.bool_], target: float) -> float:
    """The lowest confidence at which predictions at or above it reach ``target`` precision
    (Wilson lower bound); above 1 (hand everything off) when no confidence does."""
    if len(confidences) == 0:
        return 1.01
    order = np.argsort(-confidences, kind="stable")
    sorted_confidences = confidences[order]
    cumulative_correct = np.cumsum(correct[order])
    for index in range(len(order) - 1, -1, -1):
        # only cut between distinct confidences, so a threshold keeps everything at or above it
        if index + 1 < len(order) and sorted_confidences[index + 1] == sorted_confidences[index]:
            continue
        if wilson_lower_bound(int(cumulative_correct[index]), index + 1) >= target:
            return float(sorted_confidences[index])
    return 1.01


def thresholds_from_holdout(
    classes: Sequence[str],
    predicted: npt.NDArray[np.int64],
    confidence: FloatArray,
    correct: npt.NDArray[np.bool_],
    target_precision: float,
) -> dict[str, float]:
    """Per category, :func:`choose_threshold` over the held-out predictions of that category."""
    return {
        name: round(
            choose_threshold(confidence[predicted == index], correct[predicted == index], target_precision), 6
        )
        for index, name in enumerate(classes)
    }


@dataclass(slots=True)
class TrainedClassifier:
    kind: str
    classes: list[str]
    features: _Features
    coefficients: npt.NDArray[np.float32]  # features x classes
    intercepts: FloatArray
    temperature: float
    thresholds: dict[str, float]
    report: TrainingReport
    holdout_predicted: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    holdout_confidence: FloatArray = field(default_factory=lambda: np.zeros(0))
    holdout_correct: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    _word_names: list[str] | None = field(default=None, repr=False)

    def thresholds_for(self, target_precision: float) -> dict[str, float]:
        """Per-category thresholds for another target precision, from the stored held-out
        predictions (no retraining)."""
        return thresholds_from_holdout(
            self.classes,
            self.holdout_predicted,
            self.holdout_confidence,
            self.holdout_correct,
            target_precision,
        )

    # ------------------------------------------------------------ prediction

    def scores(self, matrix: sparse.csr_matrix) -> FloatArray:
        # coefficients are stored features x classes (C order), so only the rows of the text's
        # non-zero features are touched: microseconds, whatever the vocabulary size
        if matrix.shape[0] == 1:
            row = np.asarray(matrix.data, dtype=np.float32) @ self.coefficients[matrix.indices]
            single: FloatArray = (row.astype(np.float64) + self.intercepts)[np.newaxis, :]
            return single
        result: FloatArray = np.asarray(matrix @ self.coefficients, dtype=np.float64) + self.intercepts
        return result

    def probabilities(self, texts: Sequence[str]) -> FloatArray:
        return softmax(self.scores(self.features.transform(texts)), self.temperature)

    def predict(
        self, text: str, *, top_words: int = 5, thresholds: dict[str, float] | None = None
    ) -> ModelPrediction:
        return self.predict_many([text], top_words=top_words, thresholds=thresholds)[0]

    def predict_many(
        self, texts: Sequence[str], *, top_words: int = 5, thresholds: dict[str, float] | None = None
    ) -> list[ModelPrediction]:
        matrix = self.features.transform(texts)
        probabilities = softmax(self.scores(matrix), self.temperature)
        return self.predictions_from(texts, matrix, probabilities, thresholds=thresholds, top_words=top_words)

    def in_scope(self, texts: Sequence[str], matrix: sparse.csr_matrix) -> npt.NDArray[np.bool_]:
        """Per text: does it share a word with the training data (and is it not blank)?"""
        word_count = self.features.word_count
        known = np.zeros(len(texts), dtype=bool)
        for row, text in enumerate(texts):
            start, end = matrix.indptr[row], matrix.indptr[row + 1]
            known[row] = bool(text.strip()) and bool((matrix.indices[start:end] < word_count).any())
        return known

    def predictions_from(
        self,
        texts: Sequence[str],
        matrix: sparse.csr_matrix,
        probabilities: FloatArray,
        *,
        thresholds: dict[str, float] | None = None,
        top_words: int = 5,
        stages: Sequence[str] | None = None,
        in_scope: npt.NDArray[np.bool_] | None = None,
    ) -> list[ModelPrediction]:
        """Predictions from class probabilities of ``texts`` (``matrix`` = their features), with
        the words of this model's vocabulary that weigh most for the chosen category.
        ``in_scope``: :meth:`in_scope` of these texts, when the caller has it already."""
        chosen_thresholds = self.thresholds if thresholds is None else thresholds
        word_count = self.features.word_count
        if in_scope is None:
            in_scope = self.in_scope(texts, matrix)
        answers: list[ModelPrediction] = []
        for row in range(len(texts)):
            best = int(probabilities[row].argmax())
            category = self.classes[best]
            start, end = matrix.indptr[row], matrix.indptr[row + 1]
            indices = matrix.indices[start:end]
            values = matrix.data[start:end]
            known_words = indices < word_count
            words = self.top_words_for(indices[known_words], values[known_words], best, top_words)
            answers.append(
                ModelPrediction(
                    category=category,
                    confidence=round(float(probabilities[row, best]), 6),
                    threshold=float(chosen_thresholds.get(category, 1.01)),
                    top_words=words,
                    # no word seen in training: the text is outside what the model knows
                    out_of_scope=not bool(in_scope[row]),
                    stage="fast" if stages is None else stages[row],
                )
            )
        return answers

    def top_words_for(
        self, indices: npt.NDArray[np.int32], values: FloatArray, best: int, limit: int
    ) -> tuple[tuple[str, float], ...]:
        if limit <= 0 or len(indices) == 0:
            return ()
        if self._word_names is None:
            self._word_names = [""] * self.features.word_count
            for word, index in self.features.words.vocabulary_.items():
                self._word_names[index] = word
        contributions = values * self.coefficients[indices, best]
        words: list[tuple[str, float]] = []
        for position in np.argsort(-contributions):
            if contributions[position] <= 0 or len(words) == limit:
                break
            word = self._word_names[int(indices[position])]
            if word.replace(" ", "").isdigit():  # "00" explains nothing to a person
                continue
            words.append((word, round(float(contributions[position]), 4)))
        return tuple(words)

    # ------------------------------------------------------------ storage

    def to_bytes(self) -> bytes:
        encoder, self.features.encoder = self.features.encoder, None
        names, self._word_names = self._word_names, None
        try:
            payload = pickle.dumps((FORMAT_VERSION, self), protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            self.features.encoder = encoder
            self._word_names = names
        return zlib.compress(payload, level=6)

    @classmethod
    def from_bytes(cls, blob: bytes, encoder: Encoder | None = None) -> TrainedClassifier:
        # The blob was written by to_bytes() into our own database, never supplied by a user.
        model = cls.from_payload(pickle.loads(zlib.decompress(blob)))  # noqa: S301
        model.features.encoder = encoder
        return model

    @classmethod
    def from_payload(cls, payload: Any) -> TrainedClassifier:
        if not isinstance(payload, tuple) or len(payload) != 2:
            raise ValueError("not an opsdesk classifier")
        version, model = payload
        if version != FORMAT_VERSION or not isinstance(model, cls):
            raise ValueError("not an opsdesk classifier of this version")
        return model


def _fit_linear(matrix: sparse.csr_matrix, labels: npt.NDArray[np.str_], c: float) -> LinearSVC:
    model = LinearSVC(C=c, random_state=0)
    model.fit(matrix, labels)
    return model


def _decision(model: LinearSVC, matrix: sparse.csr_matrix, n_classes: int) -> FloatArray:
    scores = np.asarray(model.decision_function(matrix), dtype=np.float64)
    if n_classes == 2:  # binary LinearSVC answers one column: the second class's margin
        scores = np.column_stack([-scores, scores])
    return scores


@dataclass(slots=True)
class FastFit:
    """What training the fast model leaves behind for a model built on top of it (the cascade):
    the model, the folds it used and its held-out decision scores (n_examples x classes)."""

    model: TrainedClassifier
    folds: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]
    held_out_scores: FloatArray
    truth_index: npt.NDArray[np.int64]


def check_examples(
    texts: Sequence[str], labels: Sequence[str]
) -> tuple[npt.NDArray[np.str_], npt.NDArray[np.str_], npt.NDArray[np.int64]]:
    """(labels, sorted classes, examples per class); refuses data that cannot train a model."""
    if len(texts) != len(labels):
        raise TrainingDataError("texts and labels differ in length")
    label_array = np.asarray(labels)
    classes, counts = np.unique(label_array, return_counts=True)
    if len(classes) < 2:
        raise TrainingDataError("at least two categories are needed to train a model")
    if counts.min() < MIN_EXAMPLES_PER_CATEGORY:
        scarce = ", ".join(
            str(name)
            for name, count in zip(classes, counts, strict=True)
            if count < MIN_EXAMPLES_PER_CATEGORY
        )
        raise TrainingDataError(
            f"each category needs at least {MIN_EXAMPLES_PER_CATEGORY} examples: {scarce}"
        )
    return label_array, classes, counts


def fit_temperature(held_out: FloatArray, truth_index: npt.NDArray[np.int64]) -> float:
    """The softmax temperature of minimum log-loss on held-out scores."""
    rows = np.arange(len(truth_index))
    return min(
        TEMPERATURES,
        key=lambda t: -float(np.mean(np.log(softmax(held_out, t)[rows, truth_index] + 1e-12))),
    )


@dataclass(frozen=True, slots=True)
class HoldoutSummary:
    thresholds: dict[str, float]
    per_category: dict[str, CategoryMetrics]
    accuracy: float
    macro_f1: float
    handoff_rate: float
    accuracy_when_auto: float


def summarize_holdout(
    classes: Sequence[str],
    truth_index: npt.NDArray[np.int64],
    predicted_index: npt.NDArray[np.int64],
    confidences: FloatArray,
    target_precision: float,
) -> HoldoutSummary:
    """Thresholds per category, per-category precision/recall, accuracy, macro F1 and the
    hand-off figures of held-out predictions."""
    correct = predicted_index == truth_index
    thresholds: dict[str, float] = {}
    per_category: dict[str, CategoryMetrics] = {}
    f1_scores: list[float] = []
    for index, name in enumerate(classes):
        predicted_here = predicted_index == index
        actual_here = truth_index == index
        true_positive = int(np.sum(predicted_here & actual_here))
        precision = true_positive / int(predicted_here.sum()) if predicted_here.any() else 0.0
        recall = true_positive / int(actual_here.sum()) if actual_here.any() else 0.0
        f1_scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        threshold = choose_threshold(confidences[predicted_here], correct[predicted_here], target_precision)
        thresholds[str(name)] = round(threshold, 6)
        per_category[str(name)] = CategoryMetrics(
            round(precision, 4), round(recall, 4), int(actual_here.sum()), round(threshold, 6)
        )
    threshold_array = np.array([thresholds[str(name)] for name in classes])
    auto = confidences >= threshold_array[predicted_index]
    return HoldoutSummary(
        thresholds=thresholds,
        per_category=per_category,
        accuracy=round(float(correct.mean()), 4),
        macro_f1=round(float(np.mean(f1_scores)), 4),
        handoff_rate=round(float(1 - auto.mean()), 4),
        accuracy_when_auto=round(float(correct[auto].mean()), 4) if auto.any() else 0.0,
    )


def train_classifier(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    target_precision: float = 0.95,
    folds: int | None = None,
    c: float = 0.5,
) -> TrainedClassifier:
    """Train, calibrate and measure the fast classifier on labelled texts (see the module
    docstring)."""
    return fit_fast(texts, labels, target_precision=target_precision, folds=folds, c=c).model


def fit_fast(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    target_precision: float = 0.95,
    folds: int | None = None,
    c: float = 0.5,
) -> FastFit:
    """:func:`train_classifier`, also answering the folds and the held-out scores."""
    started = time.perf_counter()
    label_array, classes, counts = check_examples(texts, labels)
    text_list = list(texts)
    if folds is None:
        # small team histories need every example held out as often as possible; past
        # LARGE_DATASET examples three folds estimate as well and cost two fewer fits
        folds = 5 if len(text_list) < LARGE_DATASET else 3
    n_folds = int(max(2, min(folds, counts.min())))
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=0)
    splits = [
        (np.asarray(train_index, dtype=np.int64), np.asarray(test_index, dtype=np.int64))
        for train_index, test_index in splitter.split(text_list, label_array)
    ]
    held_out = np.zeros((len(text_list), len(classes)), dtype=np.float64)
    # Vectorizing holds the GIL; the linear fits (liblinear) release it. So the features of every
    # fold and of the final model are built first, then the fits run two at a time.
    fold_jobs: list[
        tuple[npt.NDArray[np.int64], sparse.csr_matrix, sparse.csr_matrix, npt.NDArray[np.str_]]
    ] = []
    for train_index, test_index in splits:
        fold_features = _Features.new(use_embeddings=False, encoder=None)
        fold_matrix = fold_features.fit([text_list[i] for i in train_index], None)
        test_matrix = fold_features.transform([text_list[i] for i in test_index])
        fold_jobs.append((test_index, fold_matrix, test_matrix, label_array[train_index]))
    features = _Features.new(use_embeddings=False, encoder=None)
    matrix = features.fit(text_list, None)
    with ThreadPoolExecutor(max_workers=FIT_THREADS) as pool:
        final_future = pool.submit(_fit_linear, matrix, label_array, c)
        fold_futures = [
            (test_index, test_matrix, pool.submit(_fit_linear, fold_matrix, fold_labels, c))
            for test_index, fold_matrix, test_matrix, fold_labels in fold_jobs
        ]
        for test_index, test_matrix, future in fold_futures:
            # a fold may lack no class (stratified, min count >= folds), so columns line up
            held_out[test_index] = _decision(future.result(), test_matrix, len(classes))
        final = final_future.result()
    truth_index = np.searchsorted(classes, label_array).astype(np.int64)
    temperature = fit_temperature(held_out, truth_index)
    probabilities = softmax(held_out, temperature)
    predicted_index = probabilities.argmax(axis=1).astype(np.int64)
    confidences = probabilities.max(axis=1)
    summary = summarize_holdout(
        [str(name) for name in classes], truth_index, predicted_index, confidences, target_precision
    )
    coefficients = np.asarray(final.coef_, dtype=np.float32)
    intercepts = np.asarray(final.intercept_, dtype=np.float64)
    if len(classes) == 2:
        coefficients = np.vstack([-coefficients, coefficients])
        intercepts = np.concatenate([-intercepts, intercepts])
    coefficients = np.ascontiguousarray(coefficients.T)
    report = TrainingReport(
        kind=ModelKind.TFIDF_LINEAR.value,
        n_train=len(text_list),
        folds=n_folds,
        accuracy=summary.accuracy,
        macro_f1=summary.macro_f1,
        target_precision=target_precision,
        temperature=temperature,
        train_seconds=round(time.perf_counter() - started, 2),
        per_category=summary.per_category,
        holdout_handoff_rate=summary.handoff_rate,
        holdout_accuracy_when_auto=summary.accuracy_when_auto,
    )
    model = TrainedClassifier(
        kind=ModelKind.TFIDF_LINEAR.value,
        classes=[str(name) for name in classes],
        features=features,
        coefficients=coefficients,
        intercepts=intercepts,
        temperature=temperature,
        thresholds=summary.thresholds,
        report=report,
        holdout_predicted=predicted_index,
        holdout_confidence=confidences,
        holdout_correct=predicted_index == truth_index,
    )
    return FastFit(model=model, folds=splits, held_out_scores=held_out, truth_index=truth_index)
