"""API tokens: 256 random bits shown once; stored as a SHA-256 digest.

A slow hash protects guessable secrets; these are not guessable, so SHA-256 keeps every request's
check to one indexed lookup (django-helpdesk's Basic auth hashes a password per request and tops
out at 3 requests/s).
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "odk_"  # noqa: S105 - a public marker that makes leaked tokens recognizable


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
