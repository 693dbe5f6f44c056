"""Verifying a Stripe webhook signature: ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=…]``
where each ``v1`` is HMAC-SHA256 of ``"<t>.<raw body>"`` with the endpoint's signing secret.
A timestamp more than :data:`TOLERANCE_SECONDS` away from now is refused (replays). Pure: the
caller passes "now", so tests and the clock agree."""

from __future__ import annotations

import hashlib
import hmac

TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """The header is missing, malformed, stale, or no signature matches."""


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(payload: bytes, header: str | None, secret: str, now_seconds: int) -> None:
    if not header:
        raise SignatureError("the Stripe-Signature header is missing")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError as error:
                raise SignatureError("the signature timestamp is not a number") from error
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureError("the Stripe-Signature header has no timestamp or no v1 signature")
    expected = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in signatures):
        raise SignatureError("no signature matches the payload")
    if abs(now_seconds - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError("the signature timestamp is outside the 5-minute tolerance")
