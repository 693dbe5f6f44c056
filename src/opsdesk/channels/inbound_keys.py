"""The key that mail providers' inbound webhooks present to post raw MIME to opsdesk.

Derived from the server secret (HMAC-SHA256), so there is nothing extra to store or leak; rotating
``OPSDESK_SECRET_KEY`` rotates it. ``opsdesk channels inbound-key`` prints it.
"""

from __future__ import annotations

import hashlib
import hmac


def inbound_email_key(secret_key: str) -> str:
    return hmac.new(secret_key.encode(), b"opsdesk inbound email", hashlib.sha256).hexdigest()[:40]


def is_valid_inbound_key(secret_key: str, presented: str) -> bool:
    # Bytes: compare_digest refuses str with non-ASCII characters, and any input must be answerable.
    return hmac.compare_digest(inbound_email_key(secret_key).encode(), presented.encode())
