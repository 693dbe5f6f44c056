"""Verifying Slack's request signature (v0): ``X-Slack-Signature: v0=<hex>`` where the hex is
HMAC-SHA256 of ``"v0:<X-Slack-Request-Timestamp>:<raw body>"`` with the app's signing secret.

Pure. Requests older (or newer) than five minutes are refused so a captured request cannot be
replayed; comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac

REPLAY_WINDOW_SECONDS = 300


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def check_slack_signature(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, *, now: int
) -> str | None:
    """None when the request is genuine and fresh, else the reason it is refused."""
    if not timestamp or not signature:
        return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return "X-Slack-Request-Timestamp is not a number"
    if abs(now - sent_at) > REPLAY_WINDOW_SECONDS:
        return "the request is older than five minutes (possible replay)"
    if not hmac.compare_digest(slack_signature(secret, timestamp, body).encode(), signature.encode()):
        return "the signature does not match"
    return None
