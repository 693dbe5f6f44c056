"""The fixed vocabularies of triage, routing and assignment."""

from __future__ import annotations

from enum import StrEnum


class Sentiment(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class ModelKind(StrEnum):
    """How a classifier version predicts: cold-start keyword rules, the fast TF-IDF linear model,
    or the optional sentence-embedding model (an install extra)."""

    KEYWORD_RULES = "keyword_rules"
    TFIDF_LINEAR = "tfidf_linear"
    EMBEDDINGS = "embeddings"


class Outcome(StrEnum):
    """What classification did with a ticket."""

    AUTO = "auto"  # confident: the category was set on the ticket
    HANDOFF = "handoff"  # unsure or out of scope: sent to the needs-triage queue
    KEPT = "kept"  # a person (or the channel) had already set the category


class AssignmentMode(StrEnum):
    MANUAL = "manual"
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


class TrainingSource(StrEnum):
    """Where a training example's category came from."""

    SET_BY_PERSON = "set_by_person"
    CORRECTED = "corrected"


NEEDS_TRIAGE_TAG = "needs_triage"
NEEDS_TRIAGE_GROUP = "Needs triage"
DEFAULT_TARGET_PRECISION = 0.95
