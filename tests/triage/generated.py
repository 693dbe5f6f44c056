"""Small generated ticket texts for triage tests (the banking77 data is for the benchmark only)."""

from __future__ import annotations

import random

TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing/refund": (
        "Please return the {amount} you took for order {number}",
        "I was charged {amount} for order {number} and want it returned to my card",
        "Give back the {amount} payment for order {number}, I never used it",
    ),
    "account/sso": (
        "Our Okta login stopped working for the {team} team",
        "The identity provider redirect fails for everyone in {team}",
        "SAML assertion rejected when {team} signs on through the company portal",
    ),
    "how_to": (
        "Where in the settings do I export the {thing} report",
        "What are the steps to share a {thing} dashboard with a colleague",
        "Which menu lets me rename a {thing} view",
    ),
}
TEAMS = ("finance", "support", "sales", "legal", "design", "ops")
THINGS = ("weekly", "monthly", "backlog", "agent", "customer", "quarterly")


def labelled_texts(per_category: int, seed: int = 7) -> list[tuple[str, str]]:
    """``per_category`` texts for each category, deterministic for a seed."""
    generator = random.Random(seed)
    rows: list[tuple[str, str]] = []
    for category, templates in TEMPLATES.items():
        for index in range(per_category):
            template = templates[index % len(templates)]
            text = template.format(
                amount=f"${generator.randint(5, 900)}.00",
                number=f"A{generator.randint(1000, 9999)}",
                team=generator.choice(TEAMS),
                thing=generator.choice(THINGS),
            )
            rows.append((text, category))
    generator.shuffle(rows)
    return rows
