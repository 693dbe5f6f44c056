"""Opaque cursors for lists ordered by id (people, accounts): the last id seen, encoded."""

from __future__ import annotations

import base64

from opsdesk.errors import FieldProblem, ValidationFailedError


def encode_after_id(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_after_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        kind, _, value = text.partition(":")
        if kind != "id":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationFailedError(
            "bad cursor", fields=[FieldProblem(("cursor",), "not a cursor from this list")]
        ) from error
