"""``opsdesk insights rollup [--rebuild]`` as an operator runs it: a real process on a file
database (the rollup service itself is tested on SQLite and PostgreSQL in test_rollups)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from opsdesk import clock, migrate
from opsdesk.db import Database
from opsdesk.insights.bulk_history import load
from opsdesk.insights.models import DailyRollup, RollupState


def _opsdesk(*arguments: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from opsdesk.cli import main; main()", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        env={"OPSDESK_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_rebuild_then_incremental_refresh(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rollups.db'}"
    migrate.upgrade(url)
    database = Database(url)
    try:
        with database.engine.begin() as connection:
            load(connection, 120, end=clock.now() - timedelta(hours=1), days=10, seed=5)
        rebuilt = _opsdesk("insights", "rollup", "--rebuild", "--db", url, data_dir=tmp_path)
        assert rebuilt.returncode == 0, rebuilt.stderr
        report = json.loads(rebuilt.stdout)
        assert report["rebuild"] is True
        assert report["built_through"] == clock.now().strftime("%Y-%m-%dT00:00")
        with database.transaction(write=False) as session:
            rows = session.scalar(select(func.count()).select_from(DailyRollup))
            state = session.get(RollupState, 1)
            assert state is not None
            assert rows == report["rows"] == state.rows
            assert rows > 0
        refreshed = _opsdesk("insights", "rollup", "--db", url, data_dir=tmp_path)
        assert refreshed.returncode == 0, refreshed.stderr
        assert json.loads(refreshed.stdout)["rebuild"] is False
        with database.transaction(write=False) as session:
            assert session.scalar(select(func.count()).select_from(DailyRollup)) == rows
    finally:
        database.dispose()
