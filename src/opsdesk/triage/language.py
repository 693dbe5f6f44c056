"""Which language a message is written in (ISO 639-1), from the share of each language's most
common words, with a script check for languages that do not use Latin letters.

Pure and fast; answers ``None`` when the text is too short or no language stands out, so callers
keep the requester's known language instead of guessing.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_PROFILES: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "the",
            "and",
            "is",
            "are",
            "to",
            "of",
            "a",
            "i",
            "my",
            "you",
            "it",
            "in",
            "for",
            "on",
            "this",
            "that",
            "have",
            "not",
            "with",
            "can",
            "be",
            "was",
            "please",
            "your",
            "me",
            "we",
            "do",
            "how",
            "what",
            "when",
            "why",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "de",
            "que",
            "y",
            "en",
            "un",
            "una",
            "es",
            "no",
            "por",
            "para",
            "con",
            "mi",
            "su",
            "se",
            "lo",
            "al",
            "del",
            "como",
            "pero",
            "mas",
            "gracias",
            "hola",
            "tengo",
            "puedo",
        ]
    ),
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "de",
            "des",
            "et",
            "est",
            "un",
            "une",
            "je",
            "ne",
            "pas",
            "pour",
            "avec",
            "mon",
            "ma",
            "mes",
            "vous",
            "nous",
            "que",
            "qui",
            "dans",
            "sur",
            "au",
            "bonjour",
            "merci",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "nicht",
            "ich",
            "ein",
            "eine",
            "mit",
            "zu",
            "den",
            "von",
            "mein",
            "meine",
            "sie",
            "wir",
            "es",
            "auf",
            "für",
            "bitte",
            "danke",
            "habe",
            "kann",
        ]
    ),
    "pt": frozenset(
        [
            "o",
            "a",
            "os",
            "as",
            "de",
            "que",
            "e",
            "em",
            "um",
            "uma",
            "é",
            "não",
            "para",
            "com",
            "meu",
            "minha",
            "por",
            "mas",
            "obrigado",
            "olá",
            "tenho",
            "posso",
            "você",
            "isso",
        ]
    ),
    "it": frozenset(
        [
            "il",
            "lo",
            "la",
            "gli",
            "le",
            "di",
            "che",
            "e",
            "è",
            "un",
            "una",
            "non",
            "per",
            "con",
            "mio",
            "mia",
            "sono",
            "ho",
            "posso",
            "grazie",
            "ciao",
            "questo",
            "della",
        ]
    ),
    "nl": frozenset(
        [
            "de",
            "het",
            "een",
            "en",
            "is",
            "niet",
            "ik",
            "mijn",
            "je",
            "van",
            "op",
            "voor",
            "met",
            "dat",
            "die",
            "zijn",
            "kan",
            "wij",
            "bedankt",
            "graag",
            "heb",
        ]
    ),
}
_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
)
MIN_WORDS = 3


def detect_language(text: str) -> str | None:
    """The language code, or ``None`` when unsure."""
    letters = [char for char in text if char.isalpha()]
    if letters:
        for code, pattern in _SCRIPTS:
            if len(pattern.findall(text)) / len(letters) > 0.3:
                return code
    words = [word.lower() for word in _WORD.findall(text)]
    if len(words) < MIN_WORDS:
        return None
    scores = {code: sum(1 for word in words if word in profile) for code, profile in _PROFILES.items()}
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, best_score), (_second, second_score) = ranked[0], ranked[1]
    # one common word ("y", "a") proves nothing: ask for two, and a clear lead
    if best_score < 2 or best_score == second_score:
        return None
    return best
