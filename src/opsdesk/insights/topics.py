"""Topic clustering of ticket texts: TF-IDF and k-means (scikit-learn), with readable labels.

The recent period is clustered; each cluster is labelled by the terms that weigh most in its
centre and shown with the tickets nearest that centre. The previous period of the same length is
mapped onto the same clusters (nearest centre, when similar enough), so a cluster is *new* when
the previous period had (almost) nothing like it and *growing* when it is at least
``GROWTH_RATIO`` times its previous size. Deterministic: fixed random state. Pure: no I/O.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer

GROWTH_RATIO = 1.5
MINIMUM_FLAGGED = 5
SIMILARITY_FLOOR = 0.1


@dataclass(frozen=True, slots=True)
class Document:
    ticket_id: int
    text: str


@dataclass(frozen=True, slots=True)
class Topic:
    label: str
    terms: tuple[str, ...]
    size: int
    previous_size: int
    example_ids: tuple[int, ...]
    ticket_ids: tuple[int, ...]

    @property
    def is_new(self) -> bool:
        return self.size >= MINIMUM_FLAGGED and self.previous_size <= max(1, self.size // 10)

    @property
    def is_growing(self) -> bool:
        return (
            not self.is_new
            and self.size >= MINIMUM_FLAGGED
            and self.size >= GROWTH_RATIO * self.previous_size
        )


def cluster(
    current: Sequence[Document],
    previous: Sequence[Document] = (),
    *,
    max_topics: int = 12,
    examples: int = 3,
) -> list[Topic]:
    """Topics of ``current``, largest first; too few documents give no topics."""
    if len(current) < 4:
        return []
    vectorizer = TfidfVectorizer(
        stop_words="english",
        max_features=20_000,
        ngram_range=(1, 2),
        min_df=2 if len(current) >= 50 else 1,
        max_df=0.9 if len(current) >= 50 else 1.0,
        sublinear_tf=True,
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9_-]{2,}\b",  # noqa: S106 - a regular expression
    )
    try:
        matrix = vectorizer.fit_transform([document.text for document in current])
    except ValueError:  # nothing but stop words
        return []
    count = max(2, min(max_topics, round(math.sqrt(len(current) / 3)), len(current) - 1))
    model = KMeans(n_clusters=count, random_state=0, n_init=3)
    with warnings.catch_warnings():
        # Near-identical tickets give fewer distinct clusters than asked: that is an answer.
        warnings.simplefilter("ignore", ConvergenceWarning)
        assignment = model.fit_predict(matrix)
    centres = model.cluster_centers_
    terms = np.asarray(vectorizer.get_feature_names_out())
    previous_counts = np.zeros(count, dtype=int)
    if previous:
        previous_matrix = vectorizer.transform([document.text for document in previous])
        similarity = previous_matrix @ centres.T
        nearest = np.asarray(similarity.argmax(axis=1)).ravel()
        best = np.asarray(similarity.max(axis=1)).ravel()
        for topic, score in zip(nearest, best, strict=True):
            if score >= SIMILARITY_FLOOR:
                previous_counts[topic] += 1
    topics = []
    for topic in range(count):
        members = np.flatnonzero(assignment == topic)
        if members.size == 0:
            continue
        top_terms = tuple(str(term) for term in terms[np.argsort(centres[topic])[::-1][:3]])
        closeness = np.asarray(matrix[members] @ centres[topic]).ravel()
        nearest_members = members[np.argsort(closeness)[::-1][:examples]]
        topics.append(
            Topic(
                label=" · ".join(top_terms),
                terms=top_terms,
                size=int(members.size),
                previous_size=int(previous_counts[topic]),
                example_ids=tuple(current[int(index)].ticket_id for index in nearest_members),
                ticket_ids=tuple(current[int(index)].ticket_id for index in members),
            )
        )
    topics.sort(key=lambda item: (-item.size, item.label))
    return topics
