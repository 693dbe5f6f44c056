"""``opsdesk bench triage --train CSV --test CSV``: train the production classifier pipeline on one
file, evaluate it on the other, print one JSON object.

Accuracy and macro F1 are over every test text; ``handoff_rate`` is the share of test texts under
their category's threshold (chosen on the training set's cross-validation, never on the test set)
and ``accuracy_when_auto`` the accuracy of the rest. Prediction latency is per single text, one at
a time, as a ticket arrives. ``train_cpu_seconds`` is the training's CPU time (every thread of this
process), which the load of other processes does not inflate.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from pathlib import Path
from typing import Annotated

import typer

from opsdesk.triage.enums import DEFAULT_TARGET_PRECISION, ModelKind


def read_labelled_csv(path: Path) -> tuple[list[str], list[str]]:
    """``text,category`` rows (RFC 4180: texts may hold quoted newlines)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"text", "category"} <= set(reader.fieldnames):
            raise typer.BadParameter(f"{path} must have the columns text,category")
        rows = [(row["text"] or "", row["category"] or "") for row in reader]
    rows = [(text, category) for text, category in rows if text.strip() and category.strip()]
    return [text for text, _ in rows], [category for _, category in rows]


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("triage")
    def bench_triage(
        train: Annotated[Path, typer.Option("--train", exists=True, dir_okay=False, help="Training CSV.")],
        test: Annotated[Path, typer.Option("--test", exists=True, dir_okay=False, help="Test CSV.")],
        target_precision: Annotated[
            float, typer.Option("--target-precision", min=0.5, max=0.999)
        ] = DEFAULT_TARGET_PRECISION,
        model: Annotated[
            str, typer.Option("--model", help="tfidf_linear (fast, default) or embeddings (install extra).")
        ] = ModelKind.TFIDF_LINEAR.value,
    ) -> None:
        """Train on --train, evaluate on --test; print accuracy, latency and hand-off figures."""
        from opsdesk.triage.classifier import train_classifier
        from opsdesk.triage.embeddings import load_encoder

        train_texts, train_labels = read_labelled_csv(train)
        test_texts, test_labels = read_labelled_csv(test)
        encoder = load_encoder() if model == ModelKind.EMBEDDINGS.value else None
        started = time.perf_counter()
        started_cpu = time.process_time()
        classifier = train_classifier(
            train_texts, train_labels, target_precision=target_precision, kind=model, encoder=encoder
        )
        train_seconds = time.perf_counter() - started
        train_cpu_seconds = time.process_time() - started_cpu
        timings: list[float] = []
        predictions = []
        for text in test_texts:
            begin = time.perf_counter()
            predictions.append(classifier.predict(text))
            timings.append((time.perf_counter() - begin) * 1000)
        correct = [p.category == label for p, label in zip(predictions, test_labels, strict=True)]
        auto = [p.is_confident for p in predictions]
        auto_correct = [ok for ok, confident in zip(correct, auto, strict=True) if confident]
        labels = sorted(set(test_labels) | set(classifier.classes))
        f1_scores: list[float] = []
        for label in labels:
            tp = sum(1 for p, t in zip(predictions, test_labels, strict=True) if p.category == label == t)
            predicted = sum(1 for p in predictions if p.category == label)
            actual = sum(1 for t in test_labels if t == label)
            precision = tp / predicted if predicted else 0.0
            recall = tp / actual if actual else 0.0
            f1_scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        timings.sort()
        result = {
            "accuracy": round(sum(correct) / len(correct), 4),
            "macro_f1": round(statistics.fmean(f1_scores), 4),
            "train_seconds": round(train_seconds, 2),
            # CPU time of this process (all its threads): the wall clock above also counts
            # whatever else the machine runs; on an idle 2-core machine the wall time is between
            # half of this (both cores busy) and all of it
            "train_cpu_seconds": round(train_cpu_seconds, 2),
            "predict_p50_ms": round(timings[len(timings) // 2], 3),
            "predict_p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 3),
            "n_train": len(train_texts),
            "n_test": len(test_texts),
            "handoff_rate": round(1 - sum(auto) / len(auto), 4),
            "accuracy_when_auto": round(sum(auto_correct) / len(auto_correct), 4) if auto_correct else 0.0,
            "target_precision": target_precision,
            "model": model,
            "model_bytes": len(classifier.to_bytes()),
        }
        typer.echo(json.dumps(result))
