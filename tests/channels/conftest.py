"""Fixtures of the channels tests: settings with their own data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsdesk.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", support_address="support@example.com", environment="test")
    settings.ensure_dirs()
    return settings
