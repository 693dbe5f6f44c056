"""Secrets at rest: IMAP passwords, Slack bot tokens and signing secrets, the SMTP password.

Invariants
- A stored secret is ``fernet:<token>`` (Fernet: AES-128-CBC + HMAC-SHA256, from
  ``cryptography``); the plain text is never stored, logged or returned by an API or a page.
- The key: when ``OPSDESK_SECRET_KEY`` is set (not the development default) the Fernet key is
  derived from it with HKDF-SHA256; otherwise a random key is created on first use in
  ``<data dir>/secrets.key`` (mode 0600, one key per line, newest first).
- Rotation: keys in ``OPSDESK_PREVIOUS_SECRET_KEYS`` (comma-separated) and older lines of the key
  file still decrypt (MultiFernet), and :func:`reencrypt` re-seals a value under the current key;
  ``opsdesk channels reencrypt-secrets`` does that for every stored secret.
- A value without the prefix is legacy plain text (the ``channels_04`` migration encrypts those);
  :func:`reveal` passes it through so an old row keeps working until it is re-encrypted.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from opsdesk.config import DEFAULT_SECRET, Settings

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

# ``cryptography`` is imported where it is used, so a process that never touches a secret (and an
# environment installed before it became a dependency) still imports the channels domain.
PREFIX = "fernet:"
KEY_FILE_NAME = "secrets.key"
_HKDF_INFO = b"opsdesk secrets at rest v1"
_lock = threading.Lock()


class SecretUnreadableError(Exception):
    """A stored secret cannot be decrypted with any known key (the key was lost or changed)."""


def _derived_key(secret_key: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode("utf-8")
    )
    return base64.urlsafe_b64encode(derived)


def key_file(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE_NAME


def _new_key() -> bytes:
    from cryptography.fernet import Fernet

    return Fernet.generate_key()


def _file_keys(settings: Settings, *, create: bool) -> list[bytes]:
    path = key_file(settings)
    with _lock:
        if not path.exists():
            if not create:
                return []
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(_new_key() + b"\n")
        return [line.strip() for line in path.read_bytes().splitlines() if line.strip()]


def keys(settings: Settings) -> list[bytes]:
    """Every key that may decrypt a stored secret, the one that encrypts first."""
    found: list[bytes] = []
    if settings.secret_key != DEFAULT_SECRET:
        found.append(_derived_key(settings.secret_key))
        found.extend(_file_keys(settings, create=False))
    else:
        found.extend(_file_keys(settings, create=True))
    found.extend(
        _derived_key(previous.strip())
        for previous in settings.previous_secret_keys.split(",")
        if previous.strip()
    )
    unique: list[bytes] = []
    for key in found:
        if key not in unique:
            unique.append(key)
    return unique


def _box(settings: Settings) -> MultiFernet:
    from cryptography.fernet import Fernet, MultiFernet

    return MultiFernet([Fernet(key) for key in keys(settings)])


def seal(settings: Settings, plain: str) -> str:
    """Encrypt ``plain`` for storage."""
    return PREFIX + _box(settings).encrypt(plain.encode("utf-8")).decode("ascii")


def is_sealed(stored: str | None) -> bool:
    return bool(stored) and str(stored).startswith(PREFIX)


def reveal(settings: Settings, stored: str) -> str:
    """The plain secret of a stored value (legacy plain text passes through)."""
    if not is_sealed(stored):
        return stored
    from cryptography.fernet import InvalidToken

    try:
        return _box(settings).decrypt(stored.removeprefix(PREFIX).encode("ascii")).decode("utf-8")
    except InvalidToken as error:
        raise SecretUnreadableError(
            "a stored secret cannot be decrypted: the secret key changed; set the old one in "
            "OPSDESK_PREVIOUS_SECRET_KEYS or enter the secret again"
        ) from error


def reencrypt(settings: Settings, stored: str) -> str:
    """The value sealed under the current key (plain text gets sealed)."""
    if not is_sealed(stored):
        return seal(settings, stored)
    from cryptography.fernet import InvalidToken

    try:
        token = _box(settings).rotate(stored.removeprefix(PREFIX).encode("ascii"))
    except InvalidToken as error:
        raise SecretUnreadableError("a stored secret cannot be decrypted with any known key") from error
    return PREFIX + token.decode("ascii")


def add_file_key(settings: Settings) -> None:
    """Put a new key at the top of the key file (older keys stay, for decrypting)."""
    existing = _file_keys(settings, create=False)
    path = key_file(settings)
    with _lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".new")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(b"\n".join([_new_key(), *existing]) + b"\n")
        temporary.replace(path)


def drop_old_file_keys(settings: Settings) -> None:
    """Keep only the newest key of the key file (after every secret was re-encrypted)."""
    existing = _file_keys(settings, create=False)
    if len(existing) <= 1:
        return
    path = key_file(settings)
    with _lock:
        temporary = path.with_suffix(".new")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(existing[0] + b"\n")
        temporary.replace(path)
