"""Storing attachment bytes under the data directory, content-addressed by SHA-256."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from opsdesk import clock
from opsdesk.tickets.errors import AttachmentTooLargeError
from opsdesk.tickets.models import Attachment

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


@dataclass(frozen=True, slots=True)
class AttachmentStore:
    root: Path
    max_bytes: int

    def save(self, filename: str, content_type: str, data: bytes, *, inline: bool = False) -> Attachment:
        """Write the bytes (once per content) and return an unsaved Attachment row for them."""
        if len(data) > self.max_bytes:
            raise AttachmentTooLargeError(
                f"{filename} is {len(data)} bytes; the limit is {self.max_bytes} bytes"
            )
        digest = hashlib.sha256(data).hexdigest()
        relative = Path(digest[:2]) / digest
        target = self.root / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_suffix(".partial")
            temporary.write_bytes(data)
            temporary.replace(target)
        safe_name = _UNSAFE.sub("_", Path(filename).name)[:255] or "attachment"
        return Attachment(
            filename=safe_name,
            content_type=(content_type or "application/octet-stream")[:255],
            size_bytes=len(data),
            sha256=digest,
            storage_path=str(relative),
            is_inline=inline,
            created_at=clock.now(),
        )

    def path_of(self, attachment: Attachment) -> Path:
        return self.root / attachment.storage_path
