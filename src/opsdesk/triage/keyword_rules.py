"""Cold-start classification: editable keyword and regular-expression rules.

Until a trained model beats them on held-out data, these rules give a category. Each rule has a
pattern (words, or a regular expression) and a weight; a text's score for a category is the sum of
the weights of its matching rules; the best category wins when its score reaches
``min_score``. Confidence is the winner's share of all matched weight, scaled by how many rules
agreed, so one lonely keyword never looks certain. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeywordRule:
    category: str
    pattern: str
    is_regex: bool = False
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class KeywordPrediction:
    category: str | None
    confidence: float
    matched: tuple[str, ...]


def compile_pattern(rule: KeywordRule) -> re.Pattern[str]:
    """The rule's pattern; plain keywords match whole words, case-insensitively."""
    if rule.is_regex:
        return re.compile(rule.pattern, re.I)
    words = [re.escape(part) for part in rule.pattern.strip().split()]
    return re.compile(r"\b" + r"\s+".join(words) + r"\b", re.I)


class KeywordClassifier:
    def __init__(self, rules: Sequence[KeywordRule], *, min_score: float = 1.0) -> None:
        self.rules = list(rules)
        self.min_score = min_score
        self._compiled = [(rule, compile_pattern(rule)) for rule in self.rules]

    def predict(self, text: str) -> KeywordPrediction:
        scores: dict[str, float] = {}
        hits: dict[str, list[str]] = {}
        for rule, pattern in self._compiled:
            match = pattern.search(text)
            if match is None:
                continue
            scores[rule.category] = scores.get(rule.category, 0.0) + rule.weight
            hits.setdefault(rule.category, []).append(match.group(0).lower())
        if not scores:
            return KeywordPrediction(None, 0.0, ())
        best = max(sorted(scores), key=lambda category: scores[category])
        if scores[best] < self.min_score:
            return KeywordPrediction(None, 0.0, tuple(hits[best]))
        share = scores[best] / sum(scores.values())
        agreement = min(1.0, 0.6 + 0.2 * (len(hits[best]) - 1))
        return KeywordPrediction(best, round(share * agreement, 4), tuple(hits[best]))
