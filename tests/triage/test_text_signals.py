"""Entities, sentiment, language, suggested priority and keyword rules: pure text signals."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from opsdesk.triage.classifier import choose_threshold, wilson_lower_bound
from opsdesk.triage.entities import extract_entities
from opsdesk.triage.keyword_rules import KeywordClassifier, KeywordRule
from opsdesk.triage.language import detect_language
from opsdesk.triage.priority import suggest_priority
from opsdesk.triage.sentiment import analyze_sentiment


def test_entities_in_order_with_amounts_in_minor_units() -> None:
    text = (
        "Invoice INV-20931 charged me $1,249.50 twice, and order #A7731 cost 30 EUR. "
        "Write to billing@acme.example about the Pro plan; also €12,50 and 500 JPY."
    )
    found = [(entity.kind, entity.value) for entity in extract_entities(text)]
    assert found == [
        ("invoice_number", "INV-20931"),
        ("amount", "124950 USD"),
        ("order_number", "A7731"),
        ("amount", "3000 EUR"),
        ("email", "billing@acme.example"),
        ("plan", "pro"),
        ("amount", "1250 EUR"),
        ("amount", "500 JPY"),
    ]


def test_entities_of_plain_text_are_empty() -> None:
    assert extract_entities("Hello, I have a question about the app.") == []


def test_sentiment_with_negation_and_intensity() -> None:
    assert analyze_sentiment("Thanks, the new dashboard is great!").label == "positive"
    negative = analyze_sentiment("This is unacceptable, I was charged twice and nobody answers")
    assert negative.label == "negative"
    assert "unacceptable" in negative.words
    assert analyze_sentiment("I am not happy with the export").label == "negative"
    assert analyze_sentiment("Where can I change the invoice address?").label == "neutral"


def test_language_detection_answers_none_when_unsure() -> None:
    assert detect_language("I cannot log in to my account since yesterday, please help") == "en"
    assert detect_language("Hola, no puedo pagar la factura de mi cuenta, gracias") == "es"
    assert detect_language("Bonjour, je ne peux pas payer ma facture avec ma carte") == "fr"
    assert detect_language("Hallo, ich kann meine Rechnung nicht bezahlen, bitte helfen") == "de"
    assert detect_language("ログインできません。助けてください") == "ja"
    assert detect_language("ok") is None


def test_priority_from_wording_sentiment_and_account() -> None:
    assert suggest_priority("Production is down for everyone!").priority == "urgent"
    blocked = suggest_priority("I can't log in", sentiment="neutral")
    assert (blocked.priority, blocked.reasons) == ("high", ("blocking problem",))
    hot = suggest_priority("Question about the export", account_is_hot=True)
    assert (hot.priority, hot.reasons) == ("high", ("hot account",))
    assert suggest_priority("Feature request: dark mode, no rush").priority == "low"
    assert suggest_priority("Something about my invoice", category="billing/dispute").priority == "high"


def test_keyword_rules_vote_and_stay_modest() -> None:
    rules = KeywordClassifier(
        [
            KeywordRule("billing/refund", r"\brefund", is_regex=True, weight=2.0),
            KeywordRule("billing/refund", "money back", weight=1.5),
            KeywordRule("billing/invoice", "invoice", weight=1.5),
        ]
    )
    sure = rules.predict("Please refund me, I want my money back")
    assert (sure.category, sure.confidence, sure.matched) == ("billing/refund", 0.8, ("refund", "money back"))
    mixed = rules.predict("Refund the invoice")
    assert mixed.category == "billing/refund"
    assert mixed.confidence == round(2.0 / 3.5 * 0.6, 4)
    assert rules.predict("The app crashes").category is None


@given(
    st.lists(st.tuples(st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=60),
    st.sampled_from([0.8, 0.9, 0.95]),
)
def test_threshold_keeps_a_set_whose_cautious_precision_reaches_the_target(
    pairs: list[tuple[float, bool]], target: float
) -> None:
    confidences = np.array([confidence for confidence, _ in pairs])
    correct = np.array([ok for _, ok in pairs])
    threshold = choose_threshold(confidences, correct, target)
    kept = confidences >= threshold
    if threshold <= 1.0:
        assert kept.any()
        assert wilson_lower_bound(int(correct[kept].sum()), int(kept.sum())) >= target
        assert correct[kept].mean() >= target
    else:
        assert not kept.any()
