"""An HTTP client on the real app for the API tests, and staff with tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.support.databases import BoundDatabase
from tests.support.web import app_client


@pytest.fixture
def client(database: BoundDatabase, tmp_path: Path) -> TestClient:
    return app_client(database, tmp_path)
