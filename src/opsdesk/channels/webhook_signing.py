"""Signing outbound webhook bodies: ``Opsdesk-Signature: t=<unix seconds>,v1=<hex>`` where the hex
is HMAC-SHA256 of ``"<t>.<raw body>"`` with the subscription's secret.

Pure. Receivers recompute the HMAC over the exact bytes they got and refuse timestamps older than
their tolerance (five minutes is usual), which stops replays of captured deliveries.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "Opsdesk-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, header: str, body: bytes, *, now: int, tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: parse the header, check the age, compare in constant time."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_seconds:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected.encode(), fields.get("v1", "").encode())
