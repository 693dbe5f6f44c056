"""The priority triage suggests for a new ticket, from urgency words in the text, the sentiment,
the account's tier and hot flag, and the category. Pure; returns the reasons with the answer."""

from __future__ import annotations

import re
from dataclasses import dataclass

_URGENT = re.compile(
    r"\b(urgent(ly)?|asap|emergency|outage|down for everyone|production (is )?down|site is down|"
    r"security (breach|incident)|data loss|immediately)\b",
    re.I,
)
_HIGH = re.compile(
    r"\b(can(no|')?t (log ?in|access|pay|work)|blocked|not working|broken|charged twice|double charged|"
    r"fraud|stolen|locked out|deadline|payment failed|declined)\b",
    re.I,
)
_LOW = re.compile(r"\b(feature request|suggestion|would be nice|just curious|no rush|whenever)\b", re.I)
HIGH_CATEGORIES = frozenset({"billing/dispute", "billing/payment_failed", "bug", "account/access"})
RANKS = ("low", "normal", "high", "urgent")


@dataclass(frozen=True, slots=True)
class PrioritySuggestion:
    priority: str
    reasons: tuple[str, ...]


def suggest_priority(
    text: str,
    *,
    sentiment: str = "neutral",
    category: str | None = None,
    account_tier: str | None = None,
    account_is_hot: bool = False,
) -> PrioritySuggestion:
    rank = 1
    reasons: list[str] = []
    if _URGENT.search(text):
        rank = 3
        reasons.append("urgent wording")
    elif _HIGH.search(text):
        rank = 2
        reasons.append("blocking problem")
    elif _LOW.search(text):
        rank = 0
        reasons.append("no urgency")
    if (
        category is not None
        and (category in HIGH_CATEGORIES or category.split("/")[0] in HIGH_CATEGORIES)
        and rank < 2
    ):
        rank = 2
        reasons.append(f"category {category}")
    if sentiment == "negative" and rank < 3 and rank >= 1:
        rank += 1
        reasons.append("negative sentiment")
    if (account_tier == "enterprise" or account_is_hot) and rank < 3 and rank >= 1:
        rank += 1
        reasons.append("hot account" if account_is_hot else "enterprise account")
    return PrioritySuggestion(RANKS[min(rank, 3)], tuple(reasons))
