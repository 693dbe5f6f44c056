"""Payment failure reasons (Stripe's decline codes) in words a customer understands.

Agents paste these into replies and the ticket shows them; they never blame the customer and
always say what to do next. Unknown codes get a neutral explanation.
"""

from __future__ import annotations

_REASONS: dict[str, str] = {
    "insufficient_funds": (
        "The card was declined because there was not enough money available. Please add funds or "
        "use another card."
    ),
    "expired_card": "The card on file has expired. Please add a card with a later expiry date.",
    "incorrect_cvc": "The card's security code did not match. Please enter the card details again.",
    "incorrect_number": "The card number was not recognised. Please enter the card details again.",
    "card_declined": (
        "The bank declined the payment without giving a reason. Please contact your bank or use another card."
    ),
    "generic_decline": (
        "The bank declined the payment without giving a reason. Please contact your bank or use another card."
    ),
    "do_not_honor": (
        "The bank declined the payment. Please contact your bank to allow the charge, or use another card."
    ),
    "lost_card": "The card was reported lost, so the bank declined it. Please use another card.",
    "stolen_card": "The card was reported stolen, so the bank declined it. Please use another card.",
    "fraudulent": (
        "The bank flagged the payment as unusual and declined it. Please contact your bank to "
        "confirm the charge."
    ),
    "card_velocity_exceeded": (
        "The card reached its spending or transaction limit. Please contact your bank or use another card."
    ),
    "processing_error": (
        "A temporary error happened while processing the card. We will try again automatically."
    ),
    "authentication_required": (
        "Your bank asks you to confirm this payment. Please follow the link in our email to approve it."
    ),
    "currency_not_supported": "The card cannot be charged in this currency. Please use another card.",
    "card_not_supported": "This card does not support this kind of payment. Please use another card.",
}

DEFAULT_REASON = "The payment could not be completed. Please check your card details or use another card."


def explain_failure(code: str | None) -> str:
    """A customer-facing sentence for a decline code (``None`` or unknown: a neutral one)."""
    if code is None:
        return DEFAULT_REASON
    return _REASONS.get(code.strip().lower(), DEFAULT_REASON)


def known_codes() -> frozenset[str]:
    return frozenset(_REASONS)
