"""Where the static assets live."""

from __future__ import annotations

from pathlib import Path


def static_directory() -> Path:
    return Path(__file__).parent / "static"
