"""Sentiment of a customer's message: negative, neutral or positive.

A small lexicon with negation ("not happy" is negative) and intensifiers, scored per word; fast
(microseconds) and explainable: the words that decided are returned with the label. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opsdesk.triage.enums import Sentiment

_WORD = re.compile(r"[a-z']+")
_POSITIVE = frozenset(
    [
        "thanks",
        "thank",
        "great",
        "awesome",
        "love",
        "excellent",
        "amazing",
        "happy",
        "glad",
        "appreciate",
        "appreciated",
        "helpful",
        "perfect",
        "wonderful",
        "fantastic",
        "nice",
        "good",
        "pleased",
        "resolved",
        "works",
        "working",
        "fixed",
        "brilliant",
        "quick",
    ]
)
_NEGATIVE = frozenset(
    [
        "angry",
        "annoyed",
        "annoying",
        "frustrated",
        "frustrating",
        "terrible",
        "awful",
        "horrible",
        "worst",
        "bad",
        "broken",
        "useless",
        "unacceptable",
        "disappointed",
        "disappointing",
        "ridiculous",
        "furious",
        "hate",
        "scam",
        "fraud",
        "wrong",
        "failed",
        "failing",
        "fails",
        "error",
        "crash",
        "crashes",
        "crashed",
        "cancel",
        "refund",
        "complaint",
        "complain",
        "slow",
        "stuck",
        "lost",
        "stolen",
        "charged",
        "overcharged",
        "twice",
        "nobody",
        "never",
        "again",
        "upset",
        "outrageous",
        "waiting",
        "unhappy",
        "poor",
    ]
)
_NEGATIONS = frozenset(
    {"not", "no", "never", "don't", "didn't", "isn't", "wasn't", "can't", "cannot", "won't"}
)
_INTENSIFIERS = frozenset({"very", "really", "extremely", "so", "totally", "absolutely"})
THRESHOLD = 1.0


@dataclass(frozen=True, slots=True)
class SentimentResult:
    label: Sentiment
    score: float
    words: tuple[str, ...]


def analyze_sentiment(text: str) -> SentimentResult:
    """Label a text; ``score`` > 0 leans positive, < 0 negative."""
    words = _WORD.findall(text.lower())
    score = 0.0
    deciding: list[str] = []
    for index, word in enumerate(words):
        polarity = 1.0 if word in _POSITIVE else -1.0 if word in _NEGATIVE else 0.0
        if polarity == 0.0:
            continue
        window = words[max(0, index - 3) : index]
        if any(previous in _NEGATIONS for previous in window):
            polarity = -polarity
        if index > 0 and words[index - 1] in _INTENSIFIERS:
            polarity *= 1.5
        score += polarity
        deciding.append(word)
    exclamations = text.count("!")
    if exclamations >= 2 and score < 0:
        score -= 0.5
    capitals = sum(1 for token in text.split() if len(token) > 3 and token.isupper())
    if capitals >= 2 and score <= 0:
        score -= 0.5
    if score <= -THRESHOLD:
        label = Sentiment.NEGATIVE
    elif score >= THRESHOLD:
        label = Sentiment.POSITIVE
    else:
        label = Sentiment.NEUTRAL
    return SentimentResult(label, score, tuple(deciding))
