"""``opsdesk user create`` and ``opsdesk token create`` as a user runs them: a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opsdesk import migrate
from opsdesk.auth.service import user_for_token
from opsdesk.db import Database


def _opsdesk(*arguments: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from opsdesk.cli import main; main()", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        env={"OPSDESK_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        check=False,
    )


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'cli.db'}"
    migrate.upgrade(url)
    return url


def test_user_and_token_create(database_url: str, tmp_path: Path) -> None:
    created = _opsdesk(
        "user", "create", "--email", "Lee@Example.com", "--name", "Lee Lead", "--role", "lead",
        "--password", "a long enough password", "--db", database_url, data_dir=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "lee@example.com (lead)" in created.stdout
    issued = _opsdesk(
        "token", "create", "--email", "lee@example.com", "--db", database_url, data_dir=tmp_path
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("odk_")
    database = Database(database_url)
    try:
        with database.transaction() as session:
            found = user_for_token(session, token)
            assert found is not None
            assert found.user.email == "lee@example.com"
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            ("user", "create", "--email", "x@example.com", "--name", "X", "--role", "boss"),
            "role: must be one of",
        ),
        (("user", "create", "--email", "not-an-email", "--name", "X", "--role", "agent"), "not an email"),
        (("token", "create", "--email", "nobody@example.com"), "no user with email nobody@example.com"),
        (("user", "create", "--name", "X", "--role", "agent"), "Missing option '--email'"),
    ],
)
def test_bad_arguments_fail_with_one_line(
    database_url: str, tmp_path: Path, arguments: tuple[str, ...], expected: str
) -> None:
    result = _opsdesk(*arguments, "--db", database_url, data_dir=tmp_path)
    assert result.returncode in (1, 2)
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unreachable_or_unmigrated_database_fails_with_one_line(tmp_path: Path) -> None:
    unreachable = _opsdesk(
        "token", "create", "--email", "a@example.com", "--db", "postgresql+psycopg://nobody@127.0.0.1:9/none",
        data_dir=tmp_path,
    )  # fmt: skip
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("error: cannot reach the database")
    assert len(unreachable.stderr.strip().splitlines()) == 1
    empty = _opsdesk(
        "token", "create", "--email", "a@example.com", "--db", f"sqlite:///{tmp_path / 'empty.db'}",
        data_dir=tmp_path,
    )  # fmt: skip
    assert empty.returncode == 1
    assert "run `opsdesk migrate` first" in empty.stderr
