"""Every operation of the OpenAPI document, fed generated input by schemathesis, as an admin.

What it holds the API to (DESIGN.md, "bad input gets a clear error"): no answer is a server error,
and every refusal (4xx) is problem+json with a title, whatever the input. It runs inside the test's
database transaction, on SQLite and on PostgreSQL, so nothing generated outlives the test.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from opsdesk.app import create_app
from opsdesk.config import Settings
from tests.support.databases import BoundDatabase
from tests.support.factories import make_user
from tests.support.web import app_client, bearer_headers

# A handful of examples per operation and database: the suite's time budget is shared.
EXAMPLES_PER_OPERATION = 3


def _operations() -> dict[str, Any]:
    """The operations of the app's OpenAPI document (the document needs no database)."""
    directory = Path(tempfile.mkdtemp(prefix="opsdesk-openapi-"))
    app = create_app(
        Settings(
            data_dir=directory,
            database_url=f"sqlite:///{directory / 'unused.db'}",
            environment="test",
            run_jobs_in_process=False,
        )
    )
    loaded = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    return {
        operation.label: operation for operation in (result.ok() for result in loaded.get_all_operations())
    }


OPERATIONS = _operations()


@pytest.fixture
def fuzz_client(database: BoundDatabase, tmp_path: Path) -> TestClient:
    return app_client(database, tmp_path)


@pytest.fixture
def admin_headers(db: Session) -> dict[str, str]:
    return bearer_headers(db, make_user(db, role="admin"))


def test_the_document_lists_the_api() -> None:
    assert "POST /api/v1/tickets" in OPERATIONS
    assert len(OPERATIONS) > 50


def test_generated_input_never_breaks_the_api(fuzz_client: TestClient, admin_headers: dict[str, str]) -> None:
    """One test per database over every operation (one app and one transaction: the fixtures are
    the expensive part), reporting every operation that broke rather than the first."""
    broken: dict[str, str] = {}
    for label in sorted(OPERATIONS):
        try:
            _check_operation(OPERATIONS[label], fuzz_client, admin_headers)
        except Exception as error:
            broken[label] = f"{type(error).__name__}: {str(error)[:600]}"
    assert broken == {}


def _encodable(entry: tuple[str, Any]) -> tuple[str, Any]:
    """A multipart part whose generated value is a number or null, sent as its JSON text (what a
    client would have to send; httpx refuses anything but text and bytes)."""
    name, part = entry
    if isinstance(part, tuple) and not isinstance(part[1], bytes | str):
        part = (part[0], json.dumps(part[1]), *part[2:])
    return name, part


def _check_operation(operation: Any, client: TestClient, headers: dict[str, str]) -> None:
    @given(data=st.data())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        report_multiple_bugs=False,
    )
    def check(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy())
        request = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
        # Cookies are not part of this API's contract (tokens are); httpx refuses per-request ones.
        request.pop("cookies", None)
        if isinstance(request.get("data"), bytes | str):  # a raw body (e.g. encoded multipart)
            request["content"] = request.pop("data")
        if request.get("files"):
            request["files"] = [_encodable(entry) for entry in request["files"]]
        response = client.request(**request)
        where = f"{case.method} {case.formatted_path} {request.get('json') or request.get('params')}"
        assert response.status_code < 500, f"{where}: {response.text[:500]}"
        if 400 <= response.status_code < 500:
            content_type = response.headers.get("content-type", "")
            assert content_type.startswith("application/problem+json"), (
                f"{where} -> {response.status_code} {content_type}: {response.text[:300]}"
            )
            assert response.json().get("title"), response.text[:300]

    check()
